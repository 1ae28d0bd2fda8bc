"""The PEP 458 repository shape, as plain dicts (see shared/docs/pypi-shape.md).

Shared by the canonical JSON benchmark (one snapshot, one bin) and the
repository generator (all of them), so both measure the same documents.
"""

from __future__ import annotations

import hashlib
import random

SPEC_VERSION = "1.0.31"
BIT_LENGTH = 14  # 16,384 bins
NAME_PREFIX = "bins"
TARGETS_PER_BIN = 139  # PEP 458's estimate: ~2.27 million targets / 16,384


def bin_names(bit_length: int = BIT_LENGTH) -> list[str]:
    width = len(f"{2 ** bit_length - 1:x}")
    return [f"{NAME_PREFIX}-{i:0{width}x}" for i in range(2 ** bit_length)]


def bin_index(path: str, bit_length: int = BIT_LENGTH) -> int:
    """The succinct hash bin (TAP 15) of a target path."""
    head = hashlib.sha256(path.encode("utf-8")).digest()[:4]
    return int.from_bytes(head, "big") >> (32 - bit_length)


def _digest(kind: bytes, seed: int, serial: int) -> bytes:
    return hashlib.blake2b(b"%s:%d:%d" % (kind, seed, serial), digest_size=64).digest()


def target_path(serial: int, seed: int = 0) -> str:
    """A distribution-file-like path, ``packages/ab/cd/<name>-<ver>.tar.gz``.

    Derived from (seed, serial) alone, so a generator can keep serials
    instead of millions of strings and still get the same path back.
    """
    d = _digest(b"path", seed, serial)
    return (f"packages/{d[0]:02x}/{d[1]:02x}/project{serial}-"
            f"{d[2] % 30}.{d[3] % 40}.{d[4] % 100}.tar.gz")


def target_entry(serial: int, seed: int = 0) -> dict:
    """A TargetFile dict: length and blake2b-256 + sha256 digests."""
    d = _digest(b"file", seed, serial)
    return {
        "length": 2_000 + int.from_bytes(d[:4], "big") % 80_000_000,
        "hashes": {"blake2b-256": d[:32].hex(), "sha256": d[32:].hex()},
    }


def targets_signed(targets: dict, version: int, expires: str, delegations=None) -> dict:
    signed = {
        "_type": "targets",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires,
        "targets": targets,
    }
    if delegations is not None:
        signed["delegations"] = delegations
    return signed


def snapshot_signed(meta: dict, version: int, expires: str) -> dict:
    return {
        "_type": "snapshot",
        "spec_version": SPEC_VERSION,
        "version": version,
        "expires": expires,
        "meta": meta,
    }


def sample_snapshot(seed: int = 458) -> dict:
    """The "signed" part of a snapshot naming all 16,384 bins."""
    rng = random.Random(seed)
    meta = {"targets.json": {"version": 7}}
    for name in bin_names():
        meta[f"{name}.json"] = {"version": rng.randrange(1, 5000)}
    return snapshot_signed(meta, 123456, "2026-11-26T13:00:00Z")


def sample_bin(seed: int = 458, count: int = TARGETS_PER_BIN) -> dict:
    """The "signed" part of one bin of ``count`` targets."""
    targets = {target_path(i, seed): target_entry(i, seed) for i in range(count)}
    return targets_signed(targets, 42, "2026-11-26T13:00:00Z")
