#!/usr/bin/env python3
"""Replay a corpus through a harness, then mutate it blindly, for sanitizer builds.

atheris cannot guide on coverage when the gcc ASan runtime is preloaded (its
coverage hooks shadow libFuzzer's), so coverage-guided runs use a plain build
and grow a corpus; this script then runs that corpus, and random mutations of
it, through the ASan+UBSan build, where a memory error aborts the process.
The input being run is always in LAST (default ./soak-last-input), so an
abort leaves its reproducer behind; a disagreement is saved as soak-fail-*.

    LD_PRELOAD=$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so) \\
    ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 \\
    python fuzz/asan_soak.py loader_fuzz CORPUS_DIR [SECONDS] [DICT]
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pathlib
import random
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent


def _harness(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tokens(path: str | None) -> list:
    """Quoted entries of a libFuzzer dictionary file."""
    if not path:
        return [b'"', b"{", b"}", b"[", b"]", b",", b":", b"\\u", b"0", b"-"]
    out = []
    for line in pathlib.Path(path).read_text().splitlines():
        if line.startswith('"') and line.endswith('"'):
            out.append(line[1:-1].encode("latin-1").decode("unicode_escape").encode("latin-1"))
    return out


def _mutate(rnd: random.Random, data: bytes, corpus: list, tokens: list) -> bytes:
    out = bytearray(data)
    for _ in range(rnd.randint(1, 4)):
        at = rnd.randint(0, len(out))
        op = rnd.randrange(6)
        if op == 0 and out:
            out[min(at, len(out) - 1)] = rnd.randrange(256)
        elif op == 1:
            out[at:at] = rnd.choice(tokens)
        elif op == 2:
            del out[at : at + rnd.randint(1, 16)]
        elif op == 3:
            other = rnd.choice(corpus)
            start = rnd.randint(0, len(other))
            out[at:at] = other[start : start + rnd.randint(1, 64)]
        elif op == 4:
            out[at:at] = out[at : at + rnd.randint(1, 32)] * rnd.randint(1, 40)
        else:
            out[at : at + 4] = str(rnd.choice([0, -1, 2**63, 2**64, 10**20])).encode()
    return bytes(out)


def main() -> int:
    name, corpus_dir = sys.argv[1], pathlib.Path(sys.argv[2])
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 60.0
    tokens = _tokens(sys.argv[4] if len(sys.argv) > 4 else None)
    sys.setrecursionlimit(10_000)
    check = _harness(name).check
    corpus = [p.read_bytes() for p in sorted(corpus_dir.iterdir()) if p.is_file()]
    last = os.open(os.environ.get("LAST", "soak-last-input"), os.O_WRONLY | os.O_CREAT, 0o644)
    rnd = random.Random(int(os.environ.get("SEED", "0")) or None)
    runs, end = 0, time.monotonic() + seconds
    pending = list(corpus)
    while pending or time.monotonic() < end:
        data = pending.pop() if pending else _mutate(rnd, rnd.choice(corpus), corpus, tokens)
        os.ftruncate(last, 0)
        os.pwrite(last, data, 0)
        try:
            check(data)
        except AssertionError:
            path = f"soak-fail-{hashlib.sha256(data).hexdigest()[:16]}"
            pathlib.Path(path).write_bytes(data)
            print(f"disagreement after {runs} runs, input saved to {path}", file=sys.stderr)
            raise
        runs += 1
    print(f"{runs} runs over {len(corpus)} corpus inputs, no finding")
    return 0


if __name__ == "__main__":
    sys.exit(main())
