"""_atomic's writers: whole files or nothing, in bounded write(2) calls.

Writes go in ``WRITE_CHUNK`` pieces: on Linux 6.18's ext4 one 508 KB
write(2) took five to eight times as long as the same bytes in 64 KiB
writes (bench/README.rst, client round 4).
"""

from __future__ import annotations

import os

import pytest

from tufc import _atomic
from tufc.exceptions import StorageError

CHUNK = _atomic.WRITE_CHUNK
SIZES = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7]


def _data(size: int) -> bytes:
    return bytes(i * 7 % 251 for i in range(size))


@pytest.fixture
def writes(monkeypatch):
    """The length of every os.write call; ``short`` makes each write only
    take half of what it is given (as write(2) may)."""
    real = os.write
    seen = {"sizes": [], "short": False}

    def write(fd, data):
        seen["sizes"].append(len(data))
        if seen["short"] and len(data) > 1:
            data = memoryview(data)[: len(data) // 2]
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    return seen


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("short", [False, True])
def test_write_atomic_writes_everything_in_bounded_pieces(tmp_path, writes, size, short):
    writes["short"] = short
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    assert _atomic.write_atomic(str(path), _data(size), durable=False)
    assert path.read_bytes() == _data(size)
    assert all(0 < n <= CHUNK for n in writes["sizes"])
    if not short:
        assert len(writes["sizes"]) == -(-size // CHUNK)
    assert os.listdir(tmp_path) == ["f.json"]


@pytest.mark.parametrize("size", SIZES)
def test_atomic_file_writes_everything_in_bounded_pieces(tmp_path, writes, size):
    path = tmp_path / "target.bin"
    with _atomic.AtomicFile(str(path), durable=False) as out:
        out.write(_data(size))
        out.write(b"tail")
        out.commit()
    assert path.read_bytes() == _data(size) + b"tail"
    assert all(n <= CHUNK for n in writes["sizes"])


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")
    calls = []

    def write(fd, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return len(data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(StorageError, match="No space left"):
        _atomic.write_atomic(str(path), _data(2 * CHUNK + 1))
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["f.json"]
