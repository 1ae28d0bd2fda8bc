"""Ed25519: RFC 8032 vectors and libsodium 1.0.18's strict verdicts.

Oracles: the published RFC 8032 section 7.1 vectors (tests/vectors), the
`cryptography` package (OpenSSL) for honest signatures, the shared
ed25519-speccheck cases with libsodium's recorded verdicts, and, when the
system has it, libsodium 1.0.18 itself called through ctypes on
adversarially built inputs.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import json
import pathlib

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import shared_testdata
from tufc.exceptions import FormatError
from tufc import _pure
from tufc._pure import ed25519 as pure_ed25519

VECTORS = pathlib.Path(__file__).parent / "vectors"
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493

# The y-coordinates libsodium 1.0.18 blocklists (small-order points), written
# from their definitions: order 1 (y = 1), 2 (y = -1), 4 (y = 0), the two
# order-8 y values (RFC 7748's published constants), and y = p, p + 1.
ORDER8_Y = (
    2707385501144840649318225287225658788936804267575313519463743609750303402022,
    55188659117513257062467267217118295137698188065244968500265048394206261417927,
)
SMALL_ORDER_Y = (0, 1, P - 1, P, P + 1) + ORDER8_Y


def encode_y(y: int, sign: int = 0) -> bytes:
    return (y | (sign << 255)).to_bytes(32, "little")


def rfc8032_vectors():
    return json.loads((VECTORS / "rfc8032_ed25519.json").read_text())


def edge_cases():
    path = shared_testdata("ed25519-edge-cases", "cases.json")
    return json.loads(path.read_text())


def raw_public(seed: bytes) -> bytes:
    key = Ed25519PrivateKey.from_private_bytes(seed).public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def verify_with(core, public: bytes, signature: bytes, message: bytes) -> bool:
    return core.PublicKey("ed25519", "ed25519", public.hex()).verify(signature, message)


# --- RFC 8032 ----------------------------------------------------------------


@pytest.mark.parametrize("index", range(5))
def test_rfc8032_vectors(core, index):
    vector = rfc8032_vectors()[index]
    seed = bytes.fromhex(vector["secret_key"])
    public = bytes.fromhex(vector["public_key"])
    message = bytes.fromhex(vector["message"])
    signature = bytes.fromhex(vector["signature"])
    assert core.ed25519_public_key(seed) == public
    assert core.ed25519_sign(seed, message) == signature
    assert verify_with(core, public, signature, message)
    assert not verify_with(core, public, signature, message + b"\x00")


def test_rfc8032_vector_sha_abc_message_is_sha512_abc():
    # The vector's message is defined as SHA-512("abc"): check the transcription.
    assert rfc8032_vectors()[4]["message"] == hashlib.sha512(b"abc").hexdigest()


@settings(max_examples=100, deadline=None)
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_sign_matches_openssl(seed, message):
    private = Ed25519PrivateKey.from_private_bytes(seed)
    assert pure_ed25519.ed25519_public_key(seed) == raw_public(seed)
    signature = pure_ed25519.ed25519_sign(seed, message)
    assert signature == private.sign(message)


@settings(max_examples=100, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    message=st.binary(max_size=300),
    bit=st.integers(0, 511),
)
def test_openssl_signatures_verify_and_flipped_bits_do_not(seed, message, bit):
    signature = Ed25519PrivateKey.from_private_bytes(seed).sign(message)
    key = _pure.PublicKey("ed25519", "ed25519", raw_public(seed).hex())
    assert key.verify(signature, message) is True
    flipped = bytearray(signature)
    flipped[bit // 8] ^= 1 << (bit % 8)
    assert key.verify(bytes(flipped), message) is False
    assert key.verify(signature, message + b"\x00") is False


@pytest.mark.parametrize("seed", [b"", b"\x00" * 31, b"\x00" * 33, b"\x00" * 64])
def test_seed_must_be_32_bytes(core, seed):
    with pytest.raises(FormatError):
        core.ed25519_public_key(seed)
    with pytest.raises(FormatError):
        core.ed25519_sign(seed, b"message")


@pytest.mark.parametrize("seed", ["00" * 32, 12345, None, [0] * 32])
def test_seed_must_be_bytes_like(core, seed):
    with pytest.raises(TypeError):
        core.ed25519_public_key(seed)
    with pytest.raises(TypeError):
        core.ed25519_sign(seed, b"m")


@pytest.mark.parametrize("message", ["text", None, 5])
def test_message_must_be_bytes_like(core, message):
    with pytest.raises(TypeError):
        core.ed25519_sign(bytes(32), message)


def test_seed_accepts_bytes_like(core):
    seed = bytes(range(32))
    expected = raw_public(seed)
    assert core.ed25519_public_key(bytearray(seed)) == expected
    assert core.ed25519_public_key(memoryview(seed)) == expected
    assert core.ed25519_sign(bytearray(seed), b"m") == core.ed25519_sign(seed, b"m")


# --- the shared speccheck cases --------------------------------------------


@pytest.mark.parametrize("index", range(15))
def test_speccheck_case_pure(pure, index):
    case = edge_cases()[index]
    assert case["index"] == index
    verdict = verify_with(
        pure,
        bytes.fromhex(case["public_key"]),
        bytes.fromhex(case["signature"]),
        bytes.fromhex(case["message"]),
    )
    assert verdict is case["libsodium_1_0_18_accepts"]


@pytest.mark.parametrize("index", range(15))
def test_speccheck_case_native(native, index):
    case = edge_cases()[index]
    verdict = verify_with(
        native,
        bytes.fromhex(case["public_key"]),
        bytes.fromhex(case["signature"]),
        bytes.fromhex(case["message"]),
    )
    assert verdict is case["libsodium_1_0_18_accepts"]


def test_speccheck_accepts_exactly_one_case(pure):
    cases = edge_cases()
    accepted = [
        c["index"]
        for c in cases
        if verify_with(
            pure,
            bytes.fromhex(c["public_key"]),
            bytes.fromhex(c["signature"]),
            bytes.fromhex(c["message"]),
        )
    ]
    assert accepted == [c["index"] for c in cases if c["libsodium_1_0_18_accepts"]] == [6]


# --- hand-built edge cases (each rule on its own) ---------------------------

SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
MESSAGE = b"tufc edge cases"


def honest():
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    return raw_public(SEED), private.sign(MESSAGE)


def test_honest_signature_verifies(core):
    public, signature = honest()
    assert verify_with(core, public, signature, MESSAGE)


def test_non_canonical_s_rejected(core):
    # S + L is the same scalar mod L: the cofactorless equation still holds,
    # only the canonical-S rule rejects it.
    public, signature = honest()
    s = int.from_bytes(signature[32:], "little")
    assert s + L < 2**256
    forged = signature[:32] + (s + L).to_bytes(32, "little")
    assert not verify_with(core, public, forged, MESSAGE)


@pytest.mark.parametrize("y", SMALL_ORDER_Y)
@pytest.mark.parametrize("sign", [0, 1])
def test_small_order_public_key_rejected(core, y, sign):
    # S = 0 and R = encode([-k]A): for a small-order A, [k]A is small too
    # and such a forgery would otherwise pass for a chosen message.
    public = encode_y(y, sign)
    _, signature = honest()
    assert not verify_with(core, public, signature, MESSAGE)
    assert not verify_with(core, public, public + bytes(32), MESSAGE)


@pytest.mark.parametrize("y", SMALL_ORDER_Y)
@pytest.mark.parametrize("sign", [0, 1])
def test_small_order_r_rejected(core, y, sign):
    public, signature = honest()
    assert not verify_with(core, public, encode_y(y, sign) + signature[32:], MESSAGE)


def test_non_canonical_public_key_rejected(core):
    # y >= p: libsodium refuses the encoding before trying to decode it.
    for y in (P + 2, P + 3, 2**255 - 1):
        assert not verify_with(core, encode_y(y), honest()[1], MESSAGE)


@pytest.mark.parametrize(
    "signature",
    [b"", b"\x00" * 63, b"\x00" * 65, b"\xff" * 64, b"\x00" * 64, bytes(range(64))],
)
def test_garbage_signature_is_false(core, signature):
    public, _ = honest()
    assert verify_with(core, public, signature, MESSAGE) is False


@pytest.mark.parametrize(
    "public",
    ["", "00" * 31, "00" * 33, " " + "00" * 31 + "0", "zz" * 32, "00" * 31 + "0\n", "0x" + "00" * 31],
)
def test_malformed_public_key_hex(core, public):
    with pytest.raises(FormatError):
        core.PublicKey("ed25519", "ed25519", public)


def test_public_key_hex_case_insensitive(core):
    public, signature = honest()
    upper = core.PublicKey("ed25519", "ed25519", public.hex().upper())
    assert upper.verify(signature, MESSAGE)
    assert upper.fingerprint == public


# --- differential against libsodium 1.0.18 itself ---------------------------


def _load_libsodium():
    name = ctypes.util.find_library("sodium")
    if name is None:
        return None
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return None
    lib.sodium_version_string.restype = ctypes.c_char_p
    if lib.sodium_init() < 0 or lib.sodium_version_string() != b"1.0.18":
        return None
    lib.crypto_sign_verify_detached.argtypes = [
        ctypes.c_char_p,
        ctypes.c_char_p,
        ctypes.c_ulonglong,
        ctypes.c_char_p,
    ]
    return lib


@pytest.fixture(scope="module")
def libsodium():
    lib = _load_libsodium()
    if lib is None:
        pytest.skip("libsodium 1.0.18 shared library not available")
    return lib


def libsodium_accepts(lib, public: bytes, signature: bytes, message: bytes) -> bool:
    assert len(public) == 32 and len(signature) == 64
    return lib.crypto_sign_verify_detached(signature, message, len(message), public) == 0


def _torsion_point(j: int):
    """[j]T for T a point of order 8 (decoded from its published y)."""
    t8 = pure_ed25519._decode_point(encode_y(ORDER8_Y[0]))
    return pure_ed25519._scalarmult(t8, j)


# The native core verifies messages of 64 KiB or more with OpenSSL, after
# libsodium's own checks of the key and signature (keys.c): these lengths
# take that path.
LONG = 65536


@st.composite
def adversarial_triples(draw, long: bool = False):
    """(public, signature, message) mixing honest parts with hostile ones;
    ``long``: messages of at least ``LONG`` bytes."""
    seed = draw(st.binary(min_size=32, max_size=32))
    message = draw(st.binary(max_size=64))
    if long:
        message += bytes(LONG + draw(st.integers(0, 3000)))
    a, prefix = pure_ed25519._expand(seed)
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    torsion_a = draw(st.sampled_from([0, 0, 1, 2, 4, 5]))
    torsion_r = draw(st.integers(0, 7))
    point_a = pure_ed25519._scalarmult_base(a)
    if torsion_a:
        point_a = pure_ed25519._add(point_a, pure_ed25519._cached(_torsion_point(torsion_a)))
    public = pure_ed25519.encode_point(point_a)
    point_r = pure_ed25519._scalarmult_base(r)
    if torsion_r:
        point_r = pure_ed25519._add(point_r, pure_ed25519._cached(_torsion_point(torsion_r)))
    big_r = pure_ed25519.encode_point(point_r)
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    s = (r + k * a) % L

    public = draw(
        st.sampled_from(["keep", "keep", "small", "noncanonical", "random", "sign"])
        .flatmap(
            lambda how: {
                "keep": st.just(public),
                "small": st.tuples(st.sampled_from(SMALL_ORDER_Y), st.integers(0, 1)).map(
                    lambda t: encode_y(*t)
                ),
                "noncanonical": st.integers(P, 2**255 - 1).map(encode_y),
                "random": st.binary(min_size=32, max_size=32),
                "sign": st.just(public[:31] + bytes([public[31] ^ 0x80])),
            }[how]
        )
    )
    big_r = draw(
        st.sampled_from(["keep", "keep", "small", "random", "noncanonical"]).flatmap(
            lambda how: {
                "keep": st.just(big_r),
                "small": st.tuples(st.sampled_from(SMALL_ORDER_Y), st.integers(0, 1)).map(
                    lambda t: encode_y(*t)
                ),
                "random": st.binary(min_size=32, max_size=32),
                "noncanonical": st.integers(P, 2**255 - 1).map(encode_y),
            }[how]
        )
    )
    s_bytes = draw(
        st.sampled_from(["keep", "keep", "plus_l", "edge", "random"]).flatmap(
            lambda how: {
                "keep": st.just(s.to_bytes(32, "little")),
                "plus_l": st.just((s + L).to_bytes(32, "little")),
                "edge": st.sampled_from([0, 1, L - 1, L, L + 1, 2**253, 2**256 - 1]).map(
                    lambda v: v.to_bytes(32, "little")
                ),
                "random": st.binary(min_size=32, max_size=32),
            }[how]
        )
    )
    return public, big_r + s_bytes, message


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # stateless fixtures
)
@given(triple=adversarial_triples())
def test_pure_agrees_with_libsodium(libsodium, triple):
    public, signature, message = triple
    expected = libsodium_accepts(libsodium, public, signature, message)
    assert pure_ed25519.verify(
        pure_ed25519.public_key_point(public), public, signature, message
    ) is expected
    assert verify_with(_pure, public, signature, message) is expected


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # stateless fixtures
)
@given(triple=adversarial_triples())
def test_native_agrees_with_libsodium(native, libsodium, triple):
    public, signature, message = triple
    expected = libsodium_accepts(libsodium, public, signature, message)
    assert verify_with(native, public, signature, message) is expected


def test_mixed_order_keys_follow_the_cofactorless_equation(libsodium):
    # A + T (T of order 8) is not blocklisted; libsodium accepts a signature
    # exactly when the torsion parts cancel in [S]B - [k mod L](A + T).
    accepted = rejected = 0
    a, prefix = pure_ed25519._expand(SEED)
    for j in range(8):
        message = MESSAGE + bytes([j])
        point_a = pure_ed25519._add(
            pure_ed25519._scalarmult_base(a), pure_ed25519._cached(_torsion_point(1))
        )
        public = pure_ed25519.encode_point(point_a)
        r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
        for t in range(8):
            point_r = pure_ed25519._add(
                pure_ed25519._scalarmult_base(r), pure_ed25519._cached(_torsion_point(t))
            )
            big_r = pure_ed25519.encode_point(point_r)
            k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
            signature = big_r + ((r + k * a) % L).to_bytes(32, "little")
            expected = libsodium_accepts(libsodium, public, signature, message)
            got = pure_ed25519.verify(
                pure_ed25519.public_key_point(public), public, signature, message
            )
            assert got is expected
            accepted += expected
            rejected += not expected
    assert accepted and rejected


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # stateless fixtures
)
@given(triple=adversarial_triples(long=True))
def test_native_agrees_with_libsodium_on_long_messages(native, libsodium, triple):
    public, signature, message = triple
    expected = libsodium_accepts(libsodium, public, signature, message)
    assert verify_with(native, public, signature, message) is expected
    assert verify_with(_pure, public, signature, message) is expected


@pytest.mark.parametrize("length", [LONG - 1, LONG, 4 * LONG])
def test_a_small_order_forgery_fails_at_every_length(core, length):
    """Public key and R the identity, S = 0: the cofactorless equation holds
    for every message, and OpenSSL's verify alone accepts it; libsodium's
    small-order rules refuse it, on both paths of the native core."""
    identity = (1).to_bytes(32, "little")
    forgery = identity + bytes(32)
    message = bytes(length)
    openssl = Ed25519PublicKey.from_public_bytes(identity)
    openssl.verify(forgery, message)  # no InvalidSignature: OpenSSL takes it
    assert verify_with(core, identity, forgery, message) is False


@pytest.mark.parametrize("length", [LONG - 1, LONG, 3 * LONG + 5])
def test_long_messages_verify_as_short_ones(core, length):
    message = bytes(range(256)) * (length // 256) + b"x" * (length % 256)
    private = Ed25519PrivateKey.from_private_bytes(SEED)
    public, signature = raw_public(SEED), private.sign(message)
    assert verify_with(core, public, signature, message)
    assert not verify_with(core, public, signature, message[:-1] + b"y")
    s = int.from_bytes(signature[32:], "little")
    assert not verify_with(core, public, signature[:32] + (s + L).to_bytes(32, "little"), message)
    for y in SMALL_ORDER_Y:
        assert not verify_with(core, public, encode_y(y) + signature[32:], message)
    assert not verify_with(core, encode_y(P + 2), signature, message)


@pytest.mark.parametrize("length", [LONG - 1, LONG])
def test_an_identity_r_from_the_key_owner_fails_at_every_length(core, length):
    """R the identity and S = k*a: [S]B - [k]A is the identity, so the
    cofactorless equation holds and OpenSSL alone accepts; libsodium's
    small-order rule on R refuses it."""
    message = bytes(length)
    a, _ = pure_ed25519._expand(SEED)
    public, identity = raw_public(SEED), (1).to_bytes(32, "little")
    k = int.from_bytes(hashlib.sha512(identity + public + message).digest(), "little") % L
    signature = identity + (k * a % L).to_bytes(32, "little")
    Ed25519PublicKey.from_public_bytes(public).verify(signature, message)  # OpenSSL takes it
    assert verify_with(core, public, signature, message) is False
