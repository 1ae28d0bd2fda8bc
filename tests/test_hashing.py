"""Hasher and hash_file against hashlib, on both cores.

The oracle is hashlib (``blake2b-256`` is ``hashlib.blake2b(digest_size=32)``).
"""

from __future__ import annotations

import array
import hashlib
import io
import os
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import fuzz_seeds
from tests.conftest import block_growth
from tufc.exceptions import (
    DownloadLengthMismatchError,
    LengthOrHashMismatchError,
    StorageError,
    UnsupportedAlgorithmError,
)

# the core fixtures are stateless modules: sharing them across examples is fine
FIXTURES_OK = [HealthCheck.function_scoped_fixture]

ALGORITHMS = ["sha256", "sha384", "sha512", "blake2b-256", "blake2b"]


def oracle(name: str):
    if name == "blake2b-256":
        return hashlib.blake2b(digest_size=32)
    if name == "blake2b":
        return hashlib.blake2b()
    return hashlib.new(name)


def expected(data: bytes, names=ALGORITHMS) -> dict:
    out = {}
    for name in names:
        h = oracle(name)
        h.update(data)
        out[name] = h.hexdigest()
    return out


def data_of(size: int) -> bytes:
    return (hashlib.sha256(str(size).encode()).digest() * (size // 32 + 1))[:size]


# -- digests ----------------------------------------------------------------------

# sizes around the block sizes, the 64 KiB slice and GIL threshold, and the
# 256 KiB from which the native core shares algorithms with a helper thread
SIZES = [0, 1, 63, 64, 65, 127, 128, 129, 65535, 65536, 65537, 3 * 65536 + 5,
         256 * 1024 - 1, 256 * 1024, 256 * 1024 + 1]


@pytest.mark.parametrize("size", SIZES)
def test_one_update_every_algorithm(core, size):
    data = data_of(size)
    h = core.Hasher(ALGORITHMS)
    h.update(data)
    assert h.length == size
    assert h.hexdigests() == expected(data)


@pytest.mark.parametrize("name", ALGORITHMS)
def test_each_algorithm_alone(core, name):
    data = data_of(100_000)
    h = core.Hasher([name])
    h.update(data)
    assert h.hexdigests() == {name: expected(data, [name])[name]}


def test_empty_input(core):
    h = core.Hasher(ALGORITHMS)
    assert h.length == 0
    assert h.hexdigests() == expected(b"")
    h.update(b"")
    assert h.hexdigests() == expected(b"")


@settings(max_examples=100, deadline=None, suppress_health_check=FIXTURES_OK)
@given(
    data=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=0, max_value=3000), max_size=8),
    names=st.lists(st.sampled_from(ALGORITHMS), min_size=1, max_size=6),
)
def test_any_chunking_equals_one_shot(core, data, cuts, names):
    h = core.Hasher(names)
    start = 0
    for cut in sorted(c % (len(data) + 1) for c in cuts):
        h.update(data[start:cut])
        start = cut
    h.update(data[start:])
    assert h.length == len(data)
    assert h.hexdigests() == expected(data, dict.fromkeys(names))


def test_large_chunks_cross_the_slices(core):
    # 1 MiB + odd tails: every algorithm fed slice by slice in turn
    data = os.urandom(1024 * 1024 + 12345)
    h = core.Hasher(["sha256", "blake2b-256"])
    h.update(data[:70000])
    h.update(memoryview(data)[70000:])
    assert h.hexdigests() == expected(data, ["sha256", "blake2b-256"])


def test_bytes_like_inputs(core):
    arr = array.array("I", range(1000))
    h = core.Hasher(["sha256"])
    h.update(bytearray(b"ab"))
    h.update(memoryview(b"cd"))
    h.update(arr)
    raw = b"abcd" + arr.tobytes()
    assert h.length == len(raw)
    assert h.hexdigests() == expected(raw, ["sha256"])


@pytest.mark.parametrize("chunk", ["text", 5, None, [1, 2]], ids=repr)
def test_update_refuses_non_bytes(core, chunk):
    h = core.Hasher(["sha256"])
    with pytest.raises(TypeError):
        h.update(chunk)
    assert h.length == 0


def test_duplicates_hashed_once_and_order_kept(core):
    h = core.Hasher(["blake2b", "sha256", "blake2b", "sha256"])
    h.update(b"abc")
    got = h.hexdigests()
    assert list(got) == ["blake2b", "sha256"]
    assert got == expected(b"abc", ["blake2b", "sha256"])


def test_hexdigests_does_not_finalize(core):
    h = core.Hasher(ALGORITHMS)
    h.update(b"first")
    first = h.hexdigests()
    assert h.hexdigests() == first == expected(b"first")
    h.update(b"second")
    assert h.hexdigests() == expected(b"firstsecond")


def test_algorithms_from_any_iterable(core):
    h = core.Hasher(iter(("sha256",)))
    assert list(h.hexdigests()) == ["sha256"]
    h = core.Hasher(("sha512",), max_length=None)
    assert list(h.hexdigests()) == ["sha512"]


# -- algorithm names fail closed --------------------------------------------------


@pytest.mark.parametrize(
    "names",
    [["md5"], ["sha1"], ["SHA256"], ["sha-256"], ["blake2s"], ["blake2b-512"],
     [""], ["sha256", "md5"], [], ()],
    ids=repr,
)
def test_unknown_algorithms_rejected(core, names):
    with pytest.raises(UnsupportedAlgorithmError):
        core.Hasher(names)
    with pytest.raises(UnsupportedAlgorithmError):
        core.hash_file(io.BytesIO(b""), names)


@pytest.mark.parametrize("names", ["sha256", b"sha256", [b"sha256"], [None], 5],
                         ids=repr)
def test_wrongly_typed_algorithms(core, names):
    with pytest.raises(TypeError):
        core.Hasher(names)


# -- max_length -------------------------------------------------------------------


def test_max_length_exact_is_fine(core):
    h = core.Hasher(["sha256"], max_length=10)
    h.update(b"12345")
    h.update(b"67890")
    h.update(b"")
    assert h.length == 10
    assert h.hexdigests() == expected(b"1234567890", ["sha256"])


def test_max_length_plus_one_refused_unhashed(core):
    h = core.Hasher(["sha256", "blake2b-256"], max_length=10)
    h.update(b"12345")
    with pytest.raises(DownloadLengthMismatchError):
        h.update(b"678901")
    assert h.length == 5
    assert h.hexdigests() == expected(b"12345", ["sha256", "blake2b-256"])
    h.update(b"67890")  # still usable up to the limit
    assert h.hexdigests() == expected(b"1234567890", ["sha256", "blake2b-256"])


def test_max_length_zero_and_huge(core):
    h = core.Hasher(["sha256"], max_length=0)
    h.update(b"")
    with pytest.raises(DownloadLengthMismatchError):
        h.update(b"x")
    big = core.Hasher(["sha256"], max_length=2**80)
    big.update(b"x" * 1000)
    assert big.length == 1000


def test_max_length_large_chunk(core):
    h = core.Hasher(["sha256"], max_length=1024 * 1024)
    with pytest.raises(DownloadLengthMismatchError):
        h.update(bytes(1024 * 1024 + 1))
    assert h.length == 0


@pytest.mark.parametrize("bad, exc", [(-1, ValueError), (-(2**70), ValueError),
                                      (True, TypeError), ("10", TypeError),
                                      (1.5, TypeError)], ids=repr)
def test_max_length_validated(core, bad, exc):
    with pytest.raises(exc):
        core.Hasher(["sha256"], max_length=bad)


# -- verify -----------------------------------------------------------------------


def hashed(core, data=b"payload", names=("sha256", "blake2b-256")):
    h = core.Hasher(list(names))
    h.update(data)
    return h


def test_verify_accepts(core):
    h = hashed(core)
    h.verify(7, expected(b"payload", ["sha256", "blake2b-256"]))
    h.verify(7, {"blake2b-256": expected(b"payload", ["blake2b-256"])["blake2b-256"]})
    h.verify(7, {})  # length only


def test_verify_length_mismatch(core):
    h = hashed(core)
    for length in (6, 8, 0, -7, 2**70):
        with pytest.raises(LengthOrHashMismatchError, match="length"):
            h.verify(length, {})


def test_verify_digest_mismatch(core):
    h = hashed(core)
    wrong = expected(b"payloaD", ["sha256"])
    with pytest.raises(LengthOrHashMismatchError, match="sha256"):
        h.verify(7, wrong)
    # one good, one bad
    hashes = expected(b"payload", ["sha256", "blake2b-256"])
    hashes["blake2b-256"] = "0" * 64
    with pytest.raises(LengthOrHashMismatchError, match="blake2b-256"):
        h.verify(7, hashes)


@pytest.mark.parametrize(
    "hashes",
    [
        {"md5": "0" * 32},                   # unknown algorithm
        {"sha512": "0" * 128},               # known, but not requested
        {"sha256": "0" * 63},                # wrong length
        {"sha256": "0" * 65},
        {"sha256": ""},
        {"sha256": "g" * 64},                # not hex
        {"sha256": " " + "0" * 63},
        {5: "0" * 64},                       # non-str name
        {"sha256": None},                    # non-str digest
        {"sha256": b"0" * 64},
    ],
    ids=repr,
)
def test_verify_malformed_expectations(core, hashes):
    with pytest.raises(LengthOrHashMismatchError):
        hashed(core).verify(7, hashes)


def test_verify_uppercase_hex_rejected(core):
    h = hashed(core)
    good = expected(b"payload", ["sha256"])["sha256"]
    with pytest.raises(LengthOrHashMismatchError):
        h.verify(7, {"sha256": good.upper()})


def test_verify_argument_types(core):
    h = hashed(core)
    with pytest.raises(TypeError):
        h.verify("7", {})
    with pytest.raises(TypeError):
        h.verify(7, ["sha256"])


def test_verify_does_not_finalize(core):
    h = hashed(core, b"ab")
    h.verify(2, expected(b"ab", ["sha256"]))
    h.update(b"c")
    h.verify(3, expected(b"abc", ["sha256", "blake2b-256"]))


# -- hash_file --------------------------------------------------------------------


@pytest.fixture
def sample_file(tmp_path):
    data = os.urandom(3 * 1024 * 1024 + 7)  # crosses the 1 MiB read chunks
    path = tmp_path / "target.bin"
    path.write_bytes(data)
    return path, data


def test_hash_file_paths(core, sample_file):
    path, data = sample_file
    want = expected(data, ["sha256", "blake2b-256"])
    for source in (path, str(path), os.fsencode(path)):
        assert core.hash_file(source, ["sha256", "blake2b-256"]) == want
    assert core.hash_file(path, ALGORITHMS) == expected(data)


def test_hash_file_objects(core, sample_file):
    path, data = sample_file
    want = expected(data, ["sha512"])
    with open(path, "rb") as f:
        assert core.hash_file(f, ["sha512"]) == want
    with open(path, "rb", buffering=0) as f:
        assert core.hash_file(f, ["sha512"]) == want
    assert core.hash_file(io.BytesIO(data), ["sha512"]) == want

    class ReadOnly:  # read() but no readinto()
        def __init__(self, raw):
            self.raw = io.BytesIO(raw)

        def read(self, n):
            return self.raw.read(n)

    assert core.hash_file(ReadOnly(data), ["sha512"]) == want


def test_hash_file_empty(core, tmp_path):
    path = tmp_path / "empty"
    path.write_bytes(b"")
    assert core.hash_file(path, ALGORITHMS) == expected(b"")


def test_hash_file_missing_is_storage_error(core, tmp_path):
    missing = tmp_path / "missing"
    with pytest.raises(StorageError, match="missing") as info:
        core.hash_file(missing, ["sha256"])
    assert isinstance(info.value.__cause__, FileNotFoundError)
    with pytest.raises(StorageError):
        core.hash_file(str(missing), ["sha256"])


def test_hash_file_directory_is_storage_error(core, tmp_path):
    with pytest.raises(StorageError):
        core.hash_file(tmp_path, ["sha256"])


def test_hash_file_bad_file_objects(core):
    class Failing(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            raise OSError(5, "I/O error")

    class Lying(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            return len(b) + 1

    class Blocking(io.RawIOBase):
        def readable(self):
            return True

        def readinto(self, b):
            return None

    for f in (Failing(), Lying(), Blocking()):
        with pytest.raises(StorageError):
            core.hash_file(f, ["sha256"])
    with pytest.raises(TypeError):
        core.hash_file(io.StringIO("text"), ["sha256"])
    with pytest.raises(TypeError):
        core.hash_file(12, ["sha256"])


# -- both cores agree, messages included ----------------------------------------


def test_cores_agree_on_messages(native, pure):
    def outcome(core, action):
        try:
            return ("ok", action(core))
        except Exception as exc:  # noqa: BLE001 - comparing what each raises
            return (type(exc), str(exc))

    def verify(core, length, hashes):
        h = core.Hasher(["sha256"], max_length=5)
        h.update(b"abc")
        return h.verify(length, hashes)

    def overflow(core):
        h = core.Hasher(["sha256"], max_length=5)
        h.update(b"abc")
        h.update(b"def")

    actions = [
        lambda c: c.Hasher(["md5"]),
        lambda c: c.Hasher([]),
        lambda c: c.Hasher(["sha256"], max_length=-1),
        overflow,
        lambda c: verify(c, 4, {}),
        lambda c: verify(c, 3, {"md5": "00"}),
        lambda c: verify(c, 3, {"sha512": "00"}),
        lambda c: verify(c, 3, {"sha256": "00"}),
        lambda c: verify(c, 3, {"sha256": "0" * 64}),
        lambda c: c.hash_file("/nonexistent/tufc-test", ["sha256"]),
    ]
    for action in actions:
        assert outcome(native, action) == outcome(pure, action)


# -- threads and leaks ------------------------------------------------------------


def test_concurrent_updates_on_one_hasher(core):
    # identical chunks: the result does not depend on the interleaving
    chunk = os.urandom(256 * 1024)
    h = core.Hasher(["sha256", "blake2b-256"])
    rounds = 8

    def work():
        for _ in range(rounds):
            h.update(chunk)
            h.hexdigests()

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert h.length == 3 * rounds * len(chunk)
    assert h.hexdigests() == expected(chunk * (3 * rounds), ["sha256", "blake2b-256"])


def test_no_leak(core, sample_file):
    path, _ = sample_file
    good = expected(b"x" * 100, ["sha256"])

    def run(n):
        for _ in range(n):
            h = core.Hasher(ALGORITHMS, max_length=150)
            h.update(b"x" * 100)
            h.hexdigests()
            h.verify(100, good)
            for bad in ((99, {}), (100, {"md5": "0"}), (100, {"sha256": "0" * 64})):
                try:
                    h.verify(*bad)
                except LengthOrHashMismatchError:
                    pass
            try:
                h.update(b"y" * 100)
            except DownloadLengthMismatchError:
                pass
            try:
                core.Hasher(["nope"])
            except UnsupportedAlgorithmError:
                pass
            try:
                core.hash_file(path.with_name("missing"), ["sha256"])
            except StorageError:
                pass
            core.hash_file(io.BytesIO(b"abc"), ["blake2b"])

    assert block_growth(run, 500) < 100


# -- fuzz seeds (fuzz/seeds/hashing), run without the fuzzer --------------------

@pytest.mark.parametrize("seed", fuzz_seeds.seeds("hashing"), ids=lambda p: p.name)
def test_fuzz_seed(seed):
    fuzz_seeds.harness("hashing_fuzz").check(seed.read_bytes())


# -- real targets: Sigstore's targets metadata is the oracle ---------------------


def test_sigstore_targets_match_their_metadata(core):
    import json

    from tests.conftest import shared_testdata

    folder = shared_testdata("sigstore-root-signing")
    roles = [(json.loads((folder / "targets.json").read_bytes()), folder / "targets")]
    delegated = folder / "registry.npmjs.org.json"
    if delegated.exists():
        roles.append((json.loads(delegated.read_bytes()), folder / "targets"))
    checked = 0
    for doc, base in roles:
        for target, info in doc["signed"]["targets"].items():
            path = base / target
            assert core.hash_file(path, list(info["hashes"])) == info["hashes"]
            h = core.Hasher(list(info["hashes"]), max_length=info["length"])
            h.update(path.read_bytes())
            h.verify(info["length"], info["hashes"])
            with pytest.raises(LengthOrHashMismatchError):
                h.verify(info["length"] + 1, info["hashes"])
            checked += 1
    assert checked >= 11
