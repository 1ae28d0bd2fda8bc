"""Streaming hashes in pure Python: the twin of ``_tufc.Hasher``/``hash_file``.

Digests come from ``hashlib`` (``blake2b-256`` is BLAKE2b with a 32-byte
digest, Warehouse's name; ``blake2b`` the 64-byte one).  Unknown names fail
closed, and expected digests are compared with ``hmac.compare_digest``.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Callable, Dict, Iterable, Mapping, Optional

from ..exceptions import (
    DownloadLengthMismatchError,
    LengthOrHashMismatchError,
    StorageError,
    UnsupportedAlgorithmError,
)

FILE_CHUNK = 1024 * 1024

_ALGORITHMS: Dict[str, Callable] = {
    "sha256": hashlib.sha256,
    "sha384": hashlib.sha384,
    "sha512": hashlib.sha512,
    "blake2b-256": lambda: hashlib.blake2b(digest_size=32),
    "blake2b": hashlib.blake2b,
}

_LOWER_HEX = frozenset("0123456789abcdef")


def _start(algorithms: Iterable[str]) -> dict:
    """A fresh hash object per requested algorithm, first-seen order."""
    if isinstance(algorithms, (str, bytes)):
        raise TypeError(
            "algorithms must be a sequence of names, not a single string"
        )
    hashes: dict = {}
    for name in algorithms:
        if not isinstance(name, str):
            raise TypeError(
                f"hash algorithm names must be str, not {type(name).__name__}"
            )
        name = str.__str__(name)
        if name not in _ALGORITHMS:
            raise UnsupportedAlgorithmError(f"unsupported hash algorithm {name!r}")
        if name not in hashes:
            hashes[name] = _ALGORITHMS[name]()
    if not hashes:
        raise UnsupportedAlgorithmError("no hash algorithm requested")
    return hashes


def _update_all(hashes: dict, data) -> None:
    for h in hashes.values():
        h.update(data)


def _hexdigests(hashes: dict) -> Dict[str, str]:
    return {name: h.hexdigest() for name, h in hashes.items()}


class Hasher:
    """Every requested digest of a stream, with an optional length cap."""

    __slots__ = ("_hashes", "_length", "_max_length")

    def __init__(self, algorithms: Iterable[str], max_length: Optional[int] = None):
        if max_length is not None:
            if isinstance(max_length, bool) or not isinstance(max_length, int):
                raise TypeError(
                    "max_length must be an int or None, "
                    f"not {type(max_length).__name__}"
                )
            if max_length < 0:
                raise ValueError("max_length must not be negative")
        self._hashes = _start(algorithms)
        self._length = 0
        self._max_length = max_length

    @property
    def length(self) -> int:
        """Number of bytes hashed so far."""
        return self._length

    def update(self, chunk, /) -> None:
        """Feed a bytes-like chunk; refuse it whole if it passes max_length."""
        if isinstance(chunk, str):
            raise TypeError("strings must be encoded before hashing")
        view = memoryview(chunk)
        size = view.nbytes
        if self._max_length is not None and size > self._max_length - self._length:
            raise DownloadLengthMismatchError(
                f"more data than the maximum of {self._max_length} bytes"
            )
        _update_all(self._hashes, view)
        self._length += size

    def hexdigests(self) -> Dict[str, str]:
        """Hex digests of the data so far; hashing can go on."""
        return _hexdigests(self._hashes)

    def verify(self, length: int, hashes: Mapping[str, str], /) -> None:
        """Raise LengthOrHashMismatchError unless length and digests match."""
        if isinstance(length, bool) or not isinstance(length, int):
            raise TypeError(f"length must be an int, not {type(length).__name__}")
        if not hasattr(hashes, "items"):
            raise TypeError(f"hashes must be a mapping, not {type(hashes).__name__}")
        if length != self._length:
            raise LengthOrHashMismatchError(
                f"length mismatch: got {self._length} bytes, expected {length}"
            )
        expected = []
        for name, value in list(hashes.items()):
            if not isinstance(name, str) or name not in _ALGORITHMS:
                raise LengthOrHashMismatchError(f"unsupported hash algorithm {name!r}")
            name = str.__str__(name)
            if name not in self._hashes:
                raise LengthOrHashMismatchError(
                    f"hash algorithm {name!r} was not computed"
                )
            size = self._hashes[name].digest_size
            if (
                not isinstance(value, str)
                or len(value) != 2 * size
                or not _LOWER_HEX.issuperset(value)
            ):
                raise LengthOrHashMismatchError(
                    f"{name} digest is not {2 * size} lowercase hex characters"
                )
            expected.append((name, value))
        for name, value in expected:
            got = self._hashes[name].digest()
            if not hmac.compare_digest(got, bytes.fromhex(value)):
                raise LengthOrHashMismatchError(
                    f"{name} mismatch: got {got.hex()}, expected {value}"
                )


def _raise_storage(exc: OSError):
    raise StorageError(str(exc)) from exc


def _hash_stream(hashes: dict, file) -> None:
    readinto = getattr(file, "readinto", None)
    if readinto is None:
        read = getattr(file, "read", None)
        if read is None:
            raise TypeError(
                f"hash_file needs a path or a binary file, not {type(file).__name__}"
            )
        while True:
            try:
                data = read(FILE_CHUNK)
            except OSError as exc:
                _raise_storage(exc)
            if data is None:
                raise StorageError("the file returned no data (a non-blocking file?)")
            if isinstance(data, str):
                raise TypeError("hash_file needs a binary file, not a text file")
            if not len(data):
                return
            _update_all(hashes, memoryview(data))
    buffer = bytearray(FILE_CHUNK)
    view = memoryview(buffer)
    while True:
        try:
            n = readinto(buffer)
        except OSError as exc:
            _raise_storage(exc)
        if n is None:
            raise StorageError("the file returned no data (a non-blocking file?)")
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= FILE_CHUNK:
            raise StorageError("readinto() returned an invalid byte count")
        if n == 0:
            return
        _update_all(hashes, view[:n])


def hash_file(path_or_file, algorithms: Iterable[str], /) -> Dict[str, str]:
    """Hex digests of a file (a path or a binary file object), one pass."""
    hashes = _start(algorithms)
    if isinstance(path_or_file, (str, bytes)) or hasattr(
        type(path_or_file), "__fspath__"
    ):
        try:
            with open(path_or_file, "rb", buffering=0) as file:
                _hash_stream(hashes, file)
        except OSError as exc:
            _raise_storage(exc)
    else:
        _hash_stream(hashes, path_or_file)
    return _hexdigests(hashes)
