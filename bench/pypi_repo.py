"""Build a PEP 458-shaped TUF repository once, for the Updater benchmark.

    nice -n 19 python bench/pypi_repo.py                  # 2,273,539 targets
    nice -n 19 python bench/pypi_repo.py --targets 100000 # smaller

The shape is shared/docs/pypi-shape.md: root, timestamp, snapshot and
targets; targets delegates everything to 16,384 succinct hash bins
(``bins-0000`` .. ``bins-3fff``); ed25519 keys (one online key signs
timestamp, snapshot and the bins); consistent snapshots; blake2b-256 and
sha256 target hashes.  python-tuf's Metadata API (the independent producer)
writes root, timestamp, snapshot and targets; the bins are built as plain
dicts, canonicalized by securesystemslib and signed with its CryptoSigner,
which is the same bytes python-tuf would write, only faster.

The result goes to ``bench/.cache/<params>/`` and is reused:

  metadata/    the published files: 1.root.json, timestamp.json,
               1.snapshot.json, 1.targets.json, 1.bins-XXXX.json
  manifest.json  parameters and one target path per bin (for lookups)

Everything expires ten years after generation (PEP 458 gives the online
roles a day; a benchmark cache must outlive that, and the expiry check
costs the same either way).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
from array import array
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _shape  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".cache"
FORMAT = 1  # bump when the layout of the generated repository changes
DEFAULT_TARGETS = 2_273_539


def repo_dir(targets: int, bit_length: int = _shape.BIT_LENGTH, seed: int = 0) -> Path:
    return CACHE / f"pypi-v{FORMAT}-t{targets}-b{bit_length}-s{seed}"


def _expires(now: datetime.datetime) -> datetime.datetime:
    return (now + datetime.timedelta(days=3650)).replace(microsecond=0)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)


def build(targets: int, bit_length: int, seed: int, out: Path, log=print) -> None:
    """Generate the repository into ``out`` (which must not exist)."""
    from securesystemslib.formats import encode_canonical
    from securesystemslib.signer import CryptoSigner
    from tuf.api.metadata import (
        Delegations,
        Metadata,
        MetaFile,
        Root,
        Snapshot,
        SuccinctRoles,
        Targets,
        Timestamp,
    )
    from tuf.api.serialization.json import JSONSerializer

    started = time.monotonic()
    now = datetime.datetime.now(datetime.timezone.utc)
    expires = _expires(now)
    expires_text = expires.strftime("%Y-%m-%dT%H:%M:%SZ")
    serializer = JSONSerializer(compact=True)

    root_signer = CryptoSigner.generate_ed25519()
    targets_signer = CryptoSigner.generate_ed25519()
    online_signer = CryptoSigner.generate_ed25519()
    online_key = online_signer.public_key
    metadata = out / "metadata"
    metadata.mkdir(parents=True)

    # 1. Assign targets to bins, keeping only serials (paths are derived).
    bins = [array("I") for _ in range(2 ** bit_length)]
    for serial in range(targets):
        bins[_shape.bin_index(_shape.target_path(serial, seed), bit_length)].append(serial)
    log(f"  assigned {targets:,} targets to {len(bins):,} bins "
        f"({time.monotonic() - started:.0f} s)")

    # 2. The bins: plain dicts, canonical JSON by securesystemslib, signed by
    #    the online key, written as python-tuf's compact JSONSerializer does.
    names = _shape.bin_names(bit_length)
    lookup_paths = []
    bin_bytes = 0
    for index, (name, serials) in enumerate(zip(names, bins)):
        entries = {}
        for serial in serials:
            entries[_shape.target_path(serial, seed)] = _shape.target_entry(serial, seed)
        lookup_paths.append(next(iter(entries)) if entries else None)
        signed = _shape.targets_signed(entries, 1, expires_text)
        signature = online_signer.sign(encode_canonical(signed).encode("utf-8"))
        data = json.dumps({"signatures": [signature.to_dict()], "signed": signed},
                          separators=(",", ":"), sort_keys=True).encode("utf-8")
        bin_bytes += len(data)
        _write(metadata / f"1.{name}.json", data)
        if index % 2048 == 2047:
            log(f"  wrote {index + 1:,} bins ({time.monotonic() - started:.0f} s)")

    # 3. Top-level roles with python-tuf's Metadata API.
    delegations = Delegations(
        keys={online_key.keyid: online_key},
        roles=None,
        succinct_roles=SuccinctRoles([online_key.keyid], 1, bit_length, _shape.NAME_PREFIX),
    )
    top_targets = Metadata(Targets(version=1, expires=expires, delegations=delegations))
    top_targets.sign(targets_signer)
    _write(metadata / "1.targets.json", top_targets.to_bytes(serializer))

    meta = {"targets.json": MetaFile(version=1)}
    meta.update((f"{name}.json", MetaFile(version=1)) for name in names)
    snapshot = Metadata(Snapshot(version=1, expires=expires, meta=meta))
    snapshot.sign(online_signer)
    _write(metadata / "1.snapshot.json", snapshot.to_bytes(serializer))

    timestamp = Metadata(Timestamp(version=1, expires=expires,
                                   snapshot_meta=MetaFile(version=1)))
    timestamp.sign(online_signer)
    _write(metadata / "timestamp.json", timestamp.to_bytes(serializer))

    root = Root(expires=expires, consistent_snapshot=True)
    root.add_key(root_signer.public_key, Root.type)
    root.add_key(targets_signer.public_key, Targets.type)
    root.add_key(online_key, Snapshot.type)
    root.add_key(online_key, Timestamp.type)
    root_md = Metadata(root)
    root_md.sign(root_signer)
    _write(metadata / "1.root.json", root_md.to_bytes(serializer))

    manifest = {
        "format": FORMAT,
        "targets": targets,
        "bit_length": bit_length,
        "seed": seed,
        "generated": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "expires": expires_text,
        "bin_bytes_total": bin_bytes,
        "lookup_paths": lookup_paths,
    }
    _write(out / "manifest.json", json.dumps(manifest, indent=1).encode("utf-8"))
    sanity_check(out)
    log(f"  done in {time.monotonic() - started:.0f} s; bins {bin_bytes / 1e6:.0f} MB "
        f"(mean {bin_bytes / len(names) / 1e3:.1f} KB)")


def sanity_check(out: Path) -> None:
    """Check with python-tuf that the repository is what a client will see."""
    from tuf.api.metadata import Metadata

    metadata = out / "metadata"
    manifest = json.loads((out / "manifest.json").read_text())
    root = Metadata.from_bytes((metadata / "1.root.json").read_bytes())
    root.verify_delegate("root", root)
    targets = Metadata.from_bytes((metadata / "1.targets.json").read_bytes())
    root.verify_delegate("targets", targets)
    snapshot = Metadata.from_bytes((metadata / "1.snapshot.json").read_bytes())
    root.verify_delegate("snapshot", snapshot)
    succinct = targets.signed.delegations.succinct_roles
    paths = [p for p in manifest["lookup_paths"] if p][:: max(1, len(manifest["lookup_paths"]) // 16)]
    for path in paths:
        role = succinct.get_role_for_target(path)
        assert f"{role}.json" in snapshot.signed.meta, role
        delegate = Metadata.from_bytes((metadata / f"1.{role}.json").read_bytes())
        targets.verify_delegate(role, delegate)
        assert path in delegate.signed.targets, (role, path)


def ensure(targets: int = DEFAULT_TARGETS, bit_length: int = _shape.BIT_LENGTH,
           seed: int = 0, log=print) -> Path:
    """The repository folder for these parameters, generated if missing."""
    out = repo_dir(targets, bit_length, seed)
    if (out / "manifest.json").exists():
        return out
    partial = out.with_name(out.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    log(f"generating {out} (once; reused afterwards)")
    build(targets, bit_length, seed, partial, log)
    os.replace(partial, out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", type=int, default=DEFAULT_TARGETS)
    parser.add_argument("--bit-length", type=int, default=_shape.BIT_LENGTH)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="regenerate")
    args = parser.parse_args(argv)
    if args.force:
        shutil.rmtree(repo_dir(args.targets, args.bit_length, args.seed), ignore_errors=True)
    print(ensure(args.targets, args.bit_length, args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
