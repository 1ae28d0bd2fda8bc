"""The loader, key and patch fuzz harnesses over their seed corpora, without atheris.

Each seed is an input the harness once found interesting or that reproduced
a bug (the harness itself asserts that the native and pure cores agree, and
checks them against json/securesystemslib/cryptography); the canonical and
hashing seeds run from tests/test_canonical.py and tests/test_hashing.py.
"""

import functools

import pytest

from tests import fuzz_seeds

HARNESSES = {"loader": "loader_fuzz", "keys": "keys_fuzz", "patch": "patch_fuzz"}


@functools.lru_cache(maxsize=None)
def _check(kind: str):
    return fuzz_seeds.harness(HARNESSES[kind]).check


@pytest.mark.parametrize(
    "kind, seed",
    [(kind, seed) for kind in HARNESSES for seed in fuzz_seeds.seeds(kind)],
    ids=lambda v: v if isinstance(v, str) else v.name,
)
def test_seed(kind, seed):
    _check(kind)(seed.read_bytes())
