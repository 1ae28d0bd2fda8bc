"""Differential fuzzing of Hasher: native core, pure core, hashlib.

The fuzz input picks algorithms, a max_length and a chunking of the data;
both cores must give hashlib's digests, refuse the same chunk at the same
point, and agree on verify().

    python fuzz/hashing_fuzz.py fuzz/seeds/hashing -max_total_time=60

needs ``atheris``; the seed files also run as ordinary tests
(tests/test_hashing.py), without it.
"""

from __future__ import annotations

import hashlib
import sys

from tufc import _pure
from tufc.exceptions import DownloadLengthMismatchError, LengthOrHashMismatchError

try:
    from tufc import _tufc as native
except ImportError:
    native = None

NAMES = ["sha256", "sha384", "sha512", "blake2b-256", "blake2b"]


def _oracle(name):
    if name == "blake2b-256":
        return hashlib.blake2b(digest_size=32)
    return hashlib.new(name)


def _run(core, names, max_length, chunks, claimed):
    h = core.Hasher(names, max_length=max_length)
    log = []
    for chunk in chunks:
        try:
            h.update(chunk)
            log.append(h.length)
        except DownloadLengthMismatchError:
            log.append("refused")
    try:
        h.verify(h.length, claimed)
        verdict = "ok"
    except LengthOrHashMismatchError:
        verdict = "mismatch"
    return log, h.hexdigests(), verdict


def check(data: bytes) -> None:
    """One fuzz input; raises AssertionError on any disagreement."""
    if len(data) < 3:
        return
    names = [NAMES[b % len(NAMES)] for b in data[: 1 + data[0] % 4]]
    rest = data[1 + data[0] % 4 :]
    max_length = None if data[1] % 3 == 0 else data[1] * 17
    chunks, pos = [], 0
    while pos < len(rest):
        size = rest[pos] * (1 + rest[pos] % 5) * 31
        chunks.append(rest[pos + 1 : pos + 1 + size])
        pos += 1 + size
    accepted = b""
    for chunk in chunks:
        if max_length is None or len(accepted) + len(chunk) <= max_length:
            accepted += chunk
    want = {}
    for name in names:
        h = _oracle(name)
        h.update(accepted)
        want[name] = h.hexdigest()
    claimed = dict(want)
    if data[2] % 2:
        name = names[0]
        claimed[name] = want[name][::-1]  # a wrong (or palindromic) digest
    results = [_run(_pure, names, max_length, chunks, claimed)]
    if native is not None:
        results.append(_run(native, names, max_length, chunks, claimed))
    for log, digests, verdict in results:
        assert digests == want
        assert verdict == ("ok" if claimed == want else "mismatch")
    assert all(r == results[0] for r in results)


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
