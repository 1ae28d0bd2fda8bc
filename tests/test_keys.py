"""Public keys: the cores' PublicKey, verify_many, Ed25519 signing, tufc.keys.Key.

Oracles, none of them tufc: keys and signatures made by `cryptography`
(OpenSSL) and `cryptography`'s own verdict on every tampered signature; the
RFC 8032 vectors (tests/vectors); the shared ed25519-speccheck cases with
libsodium 1.0.18's recorded verdicts; securesystemslib's SSlibKey and
python-tuf's Key; and a small DER writer below for hand-made malformed keys.
Core-level tests run on both cores (fixture ``core``).
"""

from __future__ import annotations

import base64
import copy
import ctypes
import ctypes.util
import gc
import hashlib
import json
import os
import pathlib
import pickle

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tufc.keys
from tests.conftest import block_growth, shared_testdata
from tufc.exceptions import FormatError, UnsupportedAlgorithmError
from tufc.keys import Key

VECTORS = pathlib.Path(__file__).parent / "vectors"
Enc = serialization.Encoding
Fmt = serialization.PublicFormat

# --- key material helpers -----------------------------------------------------


def spki_der(public_key) -> bytes:
    return public_key.public_bytes(Enc.DER, Fmt.SubjectPublicKeyInfo)


def spki_pem(public_key) -> str:
    return public_key.public_bytes(Enc.PEM, Fmt.SubjectPublicKeyInfo).decode()


def to_pem(der: bytes, width: int = 64, newline: str = "\n") -> str:
    return pem_from_body(base64.b64encode(der).decode(), width, newline)


def pem_from_body(body: str, width: int = 64, newline: str = "\n") -> str:
    lines = [body[i : i + width] for i in range(0, len(body), width)] if width else [body]
    return newline.join(
        ["-----BEGIN PUBLIC KEY-----", *lines, "-----END PUBLIC KEY-----", ""]
    )


def ed_hex(private_key) -> str:
    return private_key.public_key().public_bytes(Enc.Raw, Fmt.Raw).hex()


def point(public_key, compressed: bool = False) -> bytes:
    fmt = Fmt.CompressedPoint if compressed else Fmt.UncompressedPoint
    return public_key.public_bytes(Enc.X962, fmt)


# A minimal DER writer (for keys `cryptography` refuses to produce).


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + der_len(len(content)) + content


def der_int(value: int) -> bytes:
    return tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big"))


def der_seq(*parts: bytes) -> bytes:
    return tlv(0x30, b"".join(parts))


OID_RSA = tlv(0x06, bytes.fromhex("2a864886f70d010101"))
OID_RSA_PSS = tlv(0x06, bytes.fromhex("2a864886f70d01010a"))
OID_EC = tlv(0x06, bytes.fromhex("2a8648ce3d0201"))
OID_P256 = tlv(0x06, bytes.fromhex("2a8648ce3d030107"))
NULL = b"\x05\x00"


def rsa_spki(n: int, e: int, algorithm: bytes = OID_RSA + NULL) -> bytes:
    return der_seq(der_seq(algorithm), tlv(0x03, b"\x00" + der_seq(der_int(n), der_int(e))))


def odd_modulus(bits: int) -> int:
    value = int.from_bytes(os.urandom((bits + 7) // 8), "big") >> ((8 - bits % 8) % 8)
    return value | (1 << (bits - 1)) | 1


# --- fixtures -----------------------------------------------------------------


@pytest.fixture(scope="module")
def ed_key():
    return ed25519.Ed25519PrivateKey.generate()


CURVES = {
    "P-256": (ec.SECP256R1(), "ecdsa-sha2-nistp256", hashes.SHA256()),
    "P-384": (ec.SECP384R1(), "ecdsa-sha2-nistp384", hashes.SHA384()),
}


@pytest.fixture(scope="module")
def ec_keys():
    return {name: ec.generate_private_key(curve) for name, (curve, _, _) in CURVES.items()}


@pytest.fixture(scope="module")
def rsa_keys():
    return {bits: rsa.generate_private_key(65537, bits) for bits in (2048, 3072)}


@pytest.fixture(params=["native", "pure"])
def keys_core(request, monkeypatch):
    """tufc.keys running on each core in turn."""
    core = request.getfixturevalue(request.param)
    monkeypatch.setattr(tufc.keys, "PublicKey", core.PublicKey)
    monkeypatch.setattr(tufc.keys, "verify_many", core.verify_many)
    return core


def flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# --- Ed25519 ------------------------------------------------------------------

MESSAGES = [b"", b"x", b"signed metadata bytes", bytes(range(256)) * 40]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: f"{len(m)}B")
def test_ed25519_verifies_cryptography_signature(core, ed_key, message):
    key = core.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    signature = ed_key.sign(message)
    assert key.verify(signature, message) is True
    assert key.verify(signature, message + b"\x00") is False
    if message:
        assert key.verify(signature, flip(message, len(message) // 2)) is False


def test_ed25519_rejects_bad_signatures(core, ed_key):
    key = core.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    data = b"data"
    good = ed_key.sign(data)
    for index in (0, 31, 32, 63):
        assert key.verify(flip(good, index), data) is False
    for bad in (good[:63], good + b"\x00", b"", bytes(64), b"\xff" * 64, good[:32]):
        assert key.verify(bad, data) is False
    other = ed25519.Ed25519PrivateKey.generate()
    assert key.verify(other.sign(data), data) is False


def test_ed25519_hex_case_and_fingerprint(core, ed_key):
    raw = bytes.fromhex(ed_hex(ed_key))
    lower = core.PublicKey("ed25519", "ed25519", raw.hex())
    upper = core.PublicKey("ed25519", "ed25519", raw.hex().upper())
    assert lower.fingerprint == upper.fingerprint == raw
    assert upper.verify(ed_key.sign(b"m"), b"m") is True
    assert (lower.keytype, lower.scheme) == ("ed25519", "ed25519")


@pytest.mark.parametrize(
    "public",
    ["", "ab" * 31, "ab" * 33, "ab" * 31 + "a", "ab" * 31 + "zz", " " + "ab" * 32,
     "ab" * 32 + "\n", "0x" + "ab" * 31, "é" * 64, "ab" * 16 + " " + "ab" * 15 + "a",
     "\uff10" * 64],
)
def test_ed25519_malformed_public_key(core, public):
    with pytest.raises(FormatError):
        core.PublicKey("ed25519", "ed25519", public)


def test_ed25519_small_order_key_loads_but_verifies_nothing(core):
    # The identity point (y = 1): libsodium refuses to verify under it.
    identity = (1).to_bytes(32, "little").hex()
    key = core.PublicKey("ed25519", "ed25519", identity)
    assert key.fingerprint == bytes.fromhex(identity)
    # For the identity key, R = identity and S = 0 satisfies the equation.
    assert key.verify(bytes.fromhex(identity) + bytes(32), b"anything") is False


def test_ed25519_speccheck_edge_cases_follow_libsodium(core):
    cases = json.loads(shared_testdata("ed25519-edge-cases", "cases.json").read_text())
    assert len(cases) == 15
    verdicts = []
    for case in cases:
        try:
            key = core.PublicKey("ed25519", "ed25519", case["public_key"])
        except FormatError:  # pragma: no cover - every key is 64 hex digits
            verdicts.append(False)
            continue
        verdicts.append(
            key.verify(bytes.fromhex(case["signature"]), bytes.fromhex(case["message"]))
        )
    assert verdicts == [case["libsodium_1_0_18_accepts"] for case in cases]


def rfc8032_vectors():
    return json.loads((VECTORS / "rfc8032_ed25519.json").read_text())


def test_ed25519_rfc8032_vectors(core):
    for vector in rfc8032_vectors():
        seed = bytes.fromhex(vector["secret_key"])
        message = bytes.fromhex(vector["message"])
        signature = bytes.fromhex(vector["signature"])
        assert core.ed25519_public_key(seed).hex() == vector["public_key"]
        assert core.ed25519_sign(seed, message) == signature
        key = core.PublicKey("ed25519", "ed25519", vector["public_key"])
        assert key.verify(signature, message) is True


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.binary(min_size=32, max_size=32), message=st.binary(max_size=300))
def test_ed25519_sign_matches_cryptography(core, seed, message):
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    assert core.ed25519_public_key(seed) == bytes.fromhex(ed_hex(private))
    assert core.ed25519_sign(seed, message) == private.sign(message)


@pytest.mark.parametrize("size", [4095, 4096, 4097, 70_000, 600_000])
def test_ed25519_sign_large_messages(core, size):
    """The native core signs large messages with OpenSSL, small ones with
    libsodium: both must give RFC 8032's bytes on either side of the switch."""
    seed = bytes(range(1, 33))
    message = bytes(i % 251 for i in range(size))
    private = ed25519.Ed25519PrivateKey.from_private_bytes(seed)
    assert core.ed25519_sign(seed, message) == private.sign(message)
    assert core.ed25519_sign(seed, memoryview(message)[1:]) == private.sign(message[1:])


def test_ed25519_sign_accepts_bytes_like(core):
    seed = bytes(range(32))
    expected = ed25519.Ed25519PrivateKey.from_private_bytes(seed).sign(b"msg")
    assert core.ed25519_sign(bytearray(seed), memoryview(b"msg")) == expected
    assert core.ed25519_public_key(memoryview(seed)) == core.ed25519_public_key(seed)


@pytest.mark.parametrize("length", [0, 31, 33, 64])
def test_ed25519_seed_length(core, length):
    with pytest.raises(FormatError):
        core.ed25519_public_key(bytes(length))
    with pytest.raises(FormatError):
        core.ed25519_sign(bytes(length), b"m")


def test_ed25519_signing_types(core):
    with pytest.raises(TypeError):
        core.ed25519_public_key("0" * 32)
    with pytest.raises(TypeError):
        core.ed25519_sign(bytes(32), "message")
    with pytest.raises(TypeError):
        core.ed25519_sign(None, b"m")


# --- ECDSA --------------------------------------------------------------------


# RFC 5480 SubjectPublicKeyInfo headers for a compressed point (cryptography
# only writes uncompressed ones).
COMPRESSED_SPKI_HEADER = {
    "secp256r1": bytes.fromhex("3039301306072a8648ce3d020106082a8648ce3d030107032200"),
    "secp384r1": bytes.fromhex("3046301006072a8648ce3d020106052b81040022033200"),
}


def ec_encodings(public_key):
    return {
        "pem": spki_pem(public_key),
        "pem-compressed": to_pem(
            COMPRESSED_SPKI_HEADER[public_key.curve.name] + point(public_key, compressed=True)
        ),
        "hex": point(public_key).hex(),
        "hex-compressed": point(public_key, compressed=True).hex(),
        "hex-upper": point(public_key).hex().upper(),
    }


@pytest.mark.parametrize("curve", sorted(CURVES))
@pytest.mark.parametrize("encoding", ["pem", "pem-compressed", "hex", "hex-compressed", "hex-upper"])
@pytest.mark.parametrize("keytype", ["ecdsa", "named"])
def test_ecdsa_verifies_cryptography_signature(core, ec_keys, curve, encoding, keytype):
    _, scheme, hash_algorithm = CURVES[curve]
    private = ec_keys[curve]
    public = ec_encodings(private.public_key())[encoding]
    key = core.PublicKey(scheme if keytype == "named" else "ecdsa", scheme, public)
    data = b"payload " + curve.encode()
    signature = private.sign(data, ec.ECDSA(hash_algorithm))
    assert key.verify(signature, data) is True
    assert key.verify(signature, data + b".") is False
    assert key.fingerprint == curve.encode() + b":" + point(private.public_key())


def test_ecdsa_fingerprint_same_for_every_encoding(core, ec_keys):
    for curve, (_, scheme, _) in CURVES.items():
        public_key = ec_keys[curve].public_key()
        prints = {
            core.PublicKey(keytype, scheme, public).fingerprint
            for public in ec_encodings(public_key).values()
            for keytype in ("ecdsa", scheme)
        }
        assert prints == {curve.encode() + b":" + point(public_key)}


def signature_variants(signature: bytes, n: int):
    """Tampered and re-encoded forms of a DER ECDSA signature."""
    r, s = decode_dss_signature(signature)
    size = (n.bit_length() + 7) // 8
    body = signature[2:] if signature[1] < 0x80 else signature[3:]
    return {
        "high-s": encode_dss_signature(r, n - s),
        "r+1": encode_dss_signature(r + 1, s),
        "s+1": encode_dss_signature(r, s + 1),
        "r=0": encode_dss_signature(0, s),
        "s=0": encode_dss_signature(r, 0),
        "r=n": encode_dss_signature(n, s),
        "s=n": encode_dss_signature(r, n),
        "r+n": encode_dss_signature(r + n, s),
        "swapped": encode_dss_signature(s, r),
        "truncated": signature[:-1],
        "trailing-byte": signature + b"\x00",
        "long-form-length": b"\x30\x81" + bytes([len(body)]) + body,
        "padded-r": der_seq(tlv(0x02, b"\x00" + der_int(r)[2:]), der_int(s)),
        "negative-r": der_seq(tlv(0x02, b"\x80" + r.to_bytes(size, "big")), der_int(s)),
        "three-integers": der_seq(der_int(r), der_int(s), der_int(1)),
        "p1363": r.to_bytes(size, "big") + s.to_bytes(size, "big"),
        "empty": b"",
        "garbage": os.urandom(len(signature)),
        "empty-sequence": b"\x30\x00",
    }


def cryptography_accepts(public_key, signature, data, *args) -> bool:
    try:
        public_key.verify(signature, data, *args)
    except InvalidSignature:
        return False
    return True


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_ecdsa_tampered_signatures_follow_openssl(core, ec_keys, curve):
    ec_curve, scheme, hash_algorithm = CURVES[curve]
    private = ec_keys[curve]
    key = core.PublicKey("ecdsa", scheme, spki_pem(private.public_key()))
    data = b"tamper me"
    n = {"P-256": 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
         "P-384": int("ff" * 24 + "c7634d81f4372ddf581a0db248b0a77aecec196accc52973", 16)}[curve]
    variants = signature_variants(private.sign(data, ec.ECDSA(hash_algorithm)), n)
    expected = {
        name: cryptography_accepts(private.public_key(), sig, data, ec.ECDSA(hash_algorithm))
        for name, sig in variants.items()
    }
    # The oracle accepts high S (ECDSA is malleable) and nothing else here.
    assert [name for name, ok in expected.items() if ok] == ["high-s"]
    assert {name: key.verify(sig, data) for name, sig in variants.items()} == expected


def test_ecdsa_wrong_key(core, ec_keys):
    other = ec.generate_private_key(ec.SECP256R1())
    key = core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(other.public_key()))
    data = b"d"
    assert key.verify(ec_keys["P-256"].sign(data, ec.ECDSA(hashes.SHA256())), data) is False
    # A P-256 signature made over SHA-384 is not an ecdsa-sha2-nistp256 one.
    sig384 = other.sign(data, ec.ECDSA(hashes.SHA384()))
    assert key.verify(sig384, data) is False


@pytest.mark.parametrize("encoding", ["pem", "hex", "hex-compressed"])
def test_ecdsa_curve_must_match_scheme(core, ec_keys, encoding):
    p384 = ec_encodings(ec_keys["P-384"].public_key())[encoding]
    p256 = ec_encodings(ec_keys["P-256"].public_key())[encoding]
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", p384)
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp384", p256)


@pytest.mark.parametrize(
    "keytype, scheme",
    [("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"), ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256"),
     ("ecdsa", "ecdsa-sha2-nistp521"), ("ECDSA", "ecdsa-sha2-nistp256"),
     ("ecdsa", "ecdsa-sha2-nistp256 "), ("ecdsa", "ecdsa"), ("ed25519", "ecdsa-sha2-nistp256"),
     ("rsa", "ecdsa-sha2-nistp256")],
)
def test_ecdsa_unsupported_combinations(core, ec_keys, keytype, scheme):
    with pytest.raises(UnsupportedAlgorithmError):
        core.PublicKey(keytype, scheme, spki_pem(ec_keys["P-256"].public_key()))


def not_on_curve_x(curve) -> int:
    """The smallest x with no point on curve (cryptography says so)."""
    for x in range(1, 100):
        encoded = b"\x02" + x.to_bytes((curve.key_size + 7) // 8, "big")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(curve, encoded)
        except ValueError:
            return x
    raise AssertionError("no such x")  # pragma: no cover


@pytest.mark.parametrize("curve", sorted(CURVES))
def test_ecdsa_invalid_points(core, ec_keys, curve):
    ec_curve, scheme, _ = CURVES[curve]
    good = point(ec_keys[curve].public_key())
    size = (ec_curve.key_size + 7) // 8
    p = {"P-256": 2**256 - 2**224 + 2**192 + 2**96 - 1,
         "P-384": 2**384 - 2**128 - 2**96 + 2**32 - 1}[curve]
    off_curve = good[:-1] + bytes([good[-1] ^ 1])
    bad_points = [
        off_curve,
        b"\x02" + not_on_curve_x(ec_curve).to_bytes(size, "big"),
        b"\x02" + p.to_bytes(size, "big"),  # x = p, out of range
        b"\x04" + p.to_bytes(size, "big") + good[1 + size:],
        b"\x06" + good[1:],  # hybrid encoding
        b"\x07" + good[1:],
        b"\x05" + good[1:],
        b"\x00",  # the point at infinity
        b"\x00" * len(good),
        good[:-1],
        good + b"\x00",
        b"",
        good[1:],  # raw x || y without the 04 prefix
    ]
    for encoded in bad_points:
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", scheme, encoded.hex())
    # Inside a PEM too (the header for the uncompressed point length).
    header = spki_der(ec_keys[curve].public_key())[: -len(good)]
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", scheme, to_pem(header + off_curve))


def test_ecdsa_other_key_kinds_in_pem(core, rsa_keys):
    others = [
        ec.generate_private_key(ec.SECP521R1()).public_key(),
        ec.generate_private_key(ec.SECP256K1()).public_key(),
        ed25519.Ed25519PrivateKey.generate().public_key(),
        rsa_keys[2048].public_key(),
    ]
    for public_key in others:
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(public_key))
    # An RSA key's modulus as hex is not a point either.
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", "04" + "ab" * 255)


def test_ecdsa_non_canonical_spki(core, ec_keys):
    public_key = ec_keys["P-256"].public_key()
    der = spki_der(public_key)
    pt = point(public_key)
    variants = [
        der + b"\x00",  # trailing byte
        b"\x30\x81\x59" + der[2:],  # long-form outer length
        der_seq(der_seq(OID_EC, OID_P256, NULL), tlv(0x03, b"\x00" + pt)),  # extra param
        der_seq(der_seq(OID_EC), tlv(0x03, b"\x00" + pt)),  # no curve
        der_seq(der_seq(OID_EC, OID_P256), tlv(0x03, b"\x01" + pt)),  # unused bits
        der_seq(der_seq(OID_EC, OID_P256), tlv(0x04, pt)),  # OCTET STRING
        der_seq(der_seq(OID_RSA, OID_P256), tlv(0x03, b"\x00" + pt)),  # wrong algorithm
    ]
    assert der_seq(der_seq(OID_EC, OID_P256), tlv(0x03, b"\x00" + pt)) == der
    for bad in variants:
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", to_pem(bad))


# --- PEM rules (on an ECDSA key, the same reader serves RSA) ------------------


def pem_variants(der: bytes):
    """(accepted, rejected) PEM forms of der, whose base64 must end in '='."""
    body = base64.b64encode(der).decode()
    pads = len(body) - len(body.rstrip("="))
    assert pads in (1, 2)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet.index(body[-pads - 1])
    unused_bit_set = body[: -pads - 1] + alphabet[last | 1] + "=" * pads
    assert last & 1 == 0 and base64.b64decode(unused_bit_set) == der  # lenient decoders agree

    def with_body(new_body: str) -> str:
        return pem_from_body(new_body)

    pem = to_pem(der)
    accepted = {
        "plain": pem,
        "crlf": to_pem(der, newline="\r\n"),
        "one-line": to_pem(der, width=0),
        "width-76": to_pem(der, width=76),
        "no-final-newline": pem.rstrip("\n"),
        "surrounding-space": "\n \t\r\n" + pem + "\n\n  ",
        "body-whitespace": "-----BEGIN PUBLIC KEY-----\n" + body[:5] + " \t\f\v" + body[5:]
        + "\n-----END PUBLIC KEY-----\n",
        "no-newlines": "-----BEGIN PUBLIC KEY-----" + body + "-----END PUBLIC KEY-----",
    }
    rejected = {
        "no-end": pem.replace("-----END PUBLIC KEY-----", ""),
        "no-begin": pem.replace("-----BEGIN PUBLIC KEY-----", ""),
        "ec-label": pem.replace("PUBLIC KEY", "EC PUBLIC KEY"),
        "rsa-label": pem.replace("PUBLIC KEY", "RSA PUBLIC KEY"),
        "lowercase": pem.replace("BEGIN", "begin"),
        "text-before": "key:\n" + pem,
        "text-after": pem + "trailer\n",
        "two-blocks": pem + pem,
        "truncated": pem[: len(pem) // 2],
        "body-cut": to_pem(der[:-1]),
        "bad-char": with_body(body[:8] + "!" + body[9:]),
        "url-safe": with_body(body[:8] + "-" + body[9:]),
        "no-padding": with_body(body.rstrip("=")),
        "extra-padding": with_body(body + "=="),
        "inner-padding": with_body(body[:2] + "==" + body[4:]),
        "unused-bits": with_body(unused_bit_set),
        "empty-body": "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        "header-line": pem.replace("KEY-----\n", "KEY-----\nProc-Type: 4,ENCRYPTED\n\n", 1),
        "non-ascii": with_body(body[:8] + "\u00e9" + body[9:]),
        "nul": with_body(body[:8] + "\x00" + body[9:]),
        "leading-formfeed": "\f" + pem,
    }
    return accepted, rejected


def test_pem_accepted_forms(core, ec_keys):
    public_key = ec_keys["P-256"].public_key()
    accepted, _ = pem_variants(spki_der(public_key))
    expected = b"P-256:" + point(public_key)
    for name, pem in accepted.items():
        assert core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", pem).fingerprint == expected, name


@pytest.mark.parametrize("name", list(pem_variants(b"\x30\x03\x02\x01\x01")[1]))
def test_pem_rejected_forms(core, ec_keys, rsa_keys, name):
    for scheme, public_key in (
        ("ecdsa-sha2-nistp256", ec_keys["P-256"].public_key()),
        ("rsassa-pss-sha256", rsa_keys[3072].public_key()),  # one '=' of padding
    ):
        _, rejected = pem_variants(spki_der(public_key))
        keytype = "rsa" if scheme.startswith("rsa") else "ecdsa"
        with pytest.raises(FormatError):
            core.PublicKey(keytype, scheme, rejected[name])


def test_oversized_public_key(core, ec_keys):
    pem = spki_pem(ec_keys["P-256"].public_key())
    padded = pem.replace("\n", "\n" + " " * 70000, 1)
    for keytype, scheme, public in [
        ("ecdsa", "ecdsa-sha2-nistp256", padded),
        ("rsa", "rsassa-pss-sha256", padded),
        ("ecdsa", "ecdsa-sha2-nistp256", "04" * 40000),
        ("ed25519", "ed25519", "ab" * 40000),
    ]:
        with pytest.raises(FormatError):
            core.PublicKey(keytype, scheme, public)


# --- RSA ----------------------------------------------------------------------

HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def rsa_padding(scheme: str, salt_length=padding.PSS.DIGEST_LENGTH, mgf_hash=None):
    hash_algorithm = HASHES[scheme.rsplit("-", 1)[1]]
    if scheme.startswith("rsassa-pss"):
        return padding.PSS(padding.MGF1(mgf_hash or hash_algorithm), salt_length), hash_algorithm
    return padding.PKCS1v15(), hash_algorithm


PSS_SCHEMES = ["rsassa-pss-sha256", "rsassa-pss-sha384", "rsassa-pss-sha512"]
PKCS1_SCHEMES = ["rsa-pkcs1v15-sha256", "rsa-pkcs1v15-sha384", "rsa-pkcs1v15-sha512"]


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("scheme", PSS_SCHEMES)
@pytest.mark.parametrize("salt", ["zero", "digest", "max", "17"])
def test_rsa_pss_any_salt_length(core, rsa_keys, bits, scheme, salt):
    salt_length = {"zero": 0, "digest": padding.PSS.DIGEST_LENGTH,
                   "max": padding.PSS.MAX_LENGTH, "17": 17}[salt]
    private = rsa_keys[bits]
    key = core.PublicKey("rsa", scheme, spki_pem(private.public_key()))
    data = b"rsa pss " + scheme.encode()
    signature = private.sign(data, *rsa_padding(scheme, salt_length))
    assert key.verify(signature, data) is True
    assert key.verify(signature, data[:-1]) is False
    assert key.verify(flip(signature, len(signature) // 2), data) is False


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("scheme", PKCS1_SCHEMES)
def test_rsa_pkcs1v15(core, rsa_keys, bits, scheme):
    private = rsa_keys[bits]
    key = core.PublicKey("rsa", scheme, spki_pem(private.public_key()))
    data = b"rsa pkcs1 " + scheme.encode()
    signature = private.sign(data, *rsa_padding(scheme))
    assert key.verify(signature, data) is True
    assert key.verify(signature, data + b"!") is False
    assert key.verify(flip(signature, 0), data) is False


def test_rsa_wrong_scheme(core, rsa_keys):
    private = rsa_keys[2048]
    pem = spki_pem(private.public_key())
    data = b"cross"
    signatures = {s: private.sign(data, *rsa_padding(s)) for s in PSS_SCHEMES + PKCS1_SCHEMES}
    for scheme in PSS_SCHEMES + PKCS1_SCHEMES:
        key = core.PublicKey("rsa", scheme, pem)
        verdicts = {s: key.verify(sig, data) for s, sig in signatures.items()}
        assert verdicts == {s: s == scheme for s in signatures}
    # PSS with MGF1 over a different hash than the message hash.
    odd_mgf = private.sign(data, *rsa_padding("rsassa-pss-sha256", mgf_hash=hashes.SHA1()))
    assert not cryptography_accepts(private.public_key(), odd_mgf, data, *rsa_padding("rsassa-pss-sha256", padding.PSS.AUTO))
    assert core.PublicKey("rsa", "rsassa-pss-sha256", pem).verify(odd_mgf, data) is False


def pss_signature_with_leading_zero(private, data_prefix: bytes):
    for i in range(5000):
        data = data_prefix + str(i).encode()
        signature = private.sign(data, *rsa_padding("rsassa-pss-sha256"))
        if signature[0] == 0:
            return data, signature
    raise AssertionError("no signature with a leading zero byte")  # pragma: no cover


def test_rsa_tampered_signatures_follow_openssl(core, rsa_keys):
    private = rsa_keys[2048]
    public_key = private.public_key()
    n = public_key.public_numbers().n
    k = (n.bit_length() + 7) // 8
    data, short_able = pss_signature_with_leading_zero(private, b"tamper ")
    for scheme in ("rsassa-pss-sha256", "rsa-pkcs1v15-sha256"):
        pad, hash_algorithm = rsa_padding(scheme, padding.PSS.AUTO)
        good = short_able if scheme.startswith("rsassa") else private.sign(data, *rsa_padding(scheme))
        variants = {
            "good": good,
            "stripped-leading-zero": good[1:] if good[0] == 0 else good,
            "truncated": good[:-1],
            "extended": good + b"\x00",
            "prefixed-zero": b"\x00" + good,
            "modulus": n.to_bytes(k, "big"),
            "modulus+sig": ((int.from_bytes(good, "big") + n) % (1 << (8 * k))).to_bytes(k, "big"),
            "zeros": bytes(k),
            "one": (1).to_bytes(k, "big"),
            "ff": b"\xff" * k,
            "empty": b"",
            "garbage": os.urandom(k),
        }
        expected = {
            name: cryptography_accepts(public_key, sig, data, pad, hash_algorithm)
            for name, sig in variants.items()
        }
        assert expected["good"] and not expected["truncated"]
        key = core.PublicKey("rsa", scheme, spki_pem(public_key))
        assert {name: key.verify(sig, data) for name, sig in variants.items()} == expected, scheme


def test_rsa_pkcs1_digest_info_without_null(core, rsa_keys):
    """A DigestInfo that omits the NULL parameters, signed with the raw key."""
    private = rsa_keys[2048]
    numbers = private.private_numbers()
    n, d = numbers.public_numbers.n, numbers.d
    k = (n.bit_length() + 7) // 8
    data = b"digestinfo"
    digest = hashlib.sha256(data).digest()
    variants = {
        "with-null": bytes.fromhex("3031300d060960864801650304020105000420") + digest,
        "without-null": bytes.fromhex("302f300b0609608648016503040201" "0420") + digest,
        "bare-digest": digest,
    }
    public_key = private.public_key()
    key = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", spki_pem(public_key))
    for name, t in variants.items():
        em = b"\x00\x01" + b"\xff" * (k - len(t) - 3) + b"\x00" + t
        signature = pow(int.from_bytes(em, "big"), d, n).to_bytes(k, "big")
        expected = cryptography_accepts(public_key, signature, data, padding.PKCS1v15(), hashes.SHA256())
        assert expected == (name == "with-null")
        assert key.verify(signature, data) is expected, name


def test_rsa_fingerprint(core, rsa_keys):
    for private in rsa_keys.values():
        public_key = private.public_key()
        expected = b"rsa:" + public_key.public_bytes(Enc.DER, Fmt.PKCS1)
        prints = {
            core.PublicKey("rsa", scheme, spki_pem(public_key)).fingerprint
            for scheme in PSS_SCHEMES + PKCS1_SCHEMES
        }
        assert prints == {expected}


def test_rsa_1024_bits_accepted(core):
    private = rsa.generate_private_key(65537, 1024)
    key = core.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(private.public_key()))
    assert key.verify(private.sign(b"d", *rsa_padding("rsassa-pss-sha256")), b"d") is True


def test_rsa_hand_built_spki_is_read_like_cryptography(core, rsa_keys):
    """Our DER writer agrees with cryptography's, so the cases below are sound."""
    numbers = rsa_keys[2048].public_key().public_numbers()
    der = rsa_spki(numbers.n, numbers.e)
    assert der == spki_der(rsa_keys[2048].public_key())
    key = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", to_pem(der))
    signature = rsa_keys[2048].sign(b"x", padding.PKCS1v15(), hashes.SHA256())
    assert key.verify(signature, b"x") is True
    # e = 3 is a legitimate exponent.
    core.PublicKey("rsa", "rsa-pkcs1v15-sha256", to_pem(rsa_spki(numbers.n, 3)))


@pytest.mark.parametrize(
    "case",
    ["768-bit", "1023-bit", "16385-bit", "16400-bit", "even-n", "e=1", "e=2", "e=65536", "e=2**64+1", "e=0",
     "pss-oid", "no-null", "negative-n", "non-minimal-n", "long-form-length",
     "trailing-in-bitstring", "unused-bits", "ec-oid", "empty-bitstring",
     "e-long-length", "three-integers", "e-missing", "empty-sequence", "null-with-content",
     "pss-oid-with-null", "outer-long-form-3-bytes"],
)
def test_rsa_refused_keys(core, rsa_keys, case):
    n = rsa_keys[2048].public_key().public_numbers().n
    rsa_key = der_seq(der_int(n), der_int(65537))
    der = {
        "768-bit": lambda: rsa_spki(odd_modulus(768), 65537),
        "1023-bit": lambda: rsa_spki(odd_modulus(1023), 65537),
        "16385-bit": lambda: rsa_spki(odd_modulus(16385), 65537),
        "16400-bit": lambda: rsa_spki(odd_modulus(16400), 65537),
        # OpenSSL cannot use an even modulus (Montgomery), plain pow() can.
        "even-n": lambda: rsa_spki(odd_modulus(2048) - 1, 65537),
        "e=1": lambda: rsa_spki(n, 1),
        "e=2": lambda: rsa_spki(n, 2),
        "e=65536": lambda: rsa_spki(n, 65536),
        "e=2**64+1": lambda: rsa_spki(n, 2**64 + 1),
        "e=0": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(der_int(n), tlv(0x02, b"\x00")))),
        "pss-oid": lambda: rsa_spki(n, 65537, OID_RSA_PSS),
        "no-null": lambda: rsa_spki(n, 65537, OID_RSA),
        "negative-n": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(tlv(0x02, n.to_bytes(256, "big")), der_int(65537)))),
        "non-minimal-n": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(tlv(0x02, b"\x00\x00" + n.to_bytes(256, "big")), der_int(65537)))),
        "long-form-length": lambda: der_seq(der_seq(OID_RSA, NULL), b"\x03\x83\x00\x01\x0f\x00" + rsa_key),
        "trailing-in-bitstring": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + rsa_key + b"\x00")),
        "unused-bits": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x01" + rsa_key)),
        "ec-oid": lambda: rsa_spki(n, 65537, OID_EC + OID_P256),
        "empty-bitstring": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"")),
        "e-long-length": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(der_int(n), b"\x02\x81\x03\x01\x00\x01"))),
        "three-integers": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(der_int(n), der_int(65537), der_int(1)))),
        "e-missing": lambda: der_seq(der_seq(OID_RSA, NULL), tlv(0x03, b"\x00" + der_seq(der_int(n)))),
        "empty-sequence": lambda: der_seq(),
        "null-with-content": lambda: rsa_spki(n, 65537, OID_RSA + b"\x05\x01\x00"),
        "pss-oid-with-null": lambda: rsa_spki(n, 65537, OID_RSA_PSS + NULL),
        "outer-long-form-3-bytes": lambda: b"\x30\x83\x00" + rsa_spki(n, 65537)[2:],
    }[case]()
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", to_pem(der))


@pytest.mark.parametrize("bits, e", [(1024, 65537), (16384, 65537), (2048, 3), (2048, 2**64 - 1)])
def test_rsa_boundary_keys_accepted(core, bits, e):
    n = odd_modulus(bits)
    key = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", to_pem(rsa_spki(n, e)))
    pkcs1 = rsa.RSAPublicNumbers(e, n).public_key().public_bytes(Enc.DER, Fmt.PKCS1)
    assert key.fingerprint == b"rsa:" + pkcs1
    assert key.verify(b"\x01" * ((bits + 7) // 8), b"data") is False


def test_rsa_needs_pem(core, rsa_keys, ec_keys):
    public_key = rsa_keys[2048].public_key()
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", spki_der(public_key).hex())
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(ec_keys["P-256"].public_key()))
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", public_key.public_bytes(Enc.PEM, Fmt.PKCS1).decode())


@pytest.mark.parametrize(
    "keytype, scheme",
    [("rsa", "rsassa-pss-sha224"), ("rsa", "rsa-pkcs1v15-sha1"), ("rsa", "rsassa-pss-SHA256"),
     ("RSA", "rsassa-pss-sha256"), ("rsa", "rsa-pkcs1v15"), ("rsa", "rsassa-pss-sha256\x00"),
     ("ed25519", "rsassa-pss-sha256"), ("ecdsa", "rsassa-pss-sha256")],
)
def test_rsa_unsupported_combinations(core, rsa_keys, keytype, scheme):
    with pytest.raises(UnsupportedAlgorithmError):
        core.PublicKey(keytype, scheme, spki_pem(rsa_keys[2048].public_key()))


# --- generic PublicKey and verify_many behaviour ------------------------------


@pytest.mark.parametrize(
    "keytype, scheme",
    [("ed25519", "ed25519ph"), ("sigstore-oidc", "Fulcio"), ("", ""), ("ed25519\x00", "ed25519"),
     ("Ed25519", "ed25519"), ("ed25519", "ED25519"), ("\udcff", "ed25519")],
)
def test_unsupported_keytype_or_scheme(core, keytype, scheme):
    with pytest.raises(UnsupportedAlgorithmError):
        core.PublicKey(keytype, scheme, "ab" * 32)


@pytest.mark.parametrize(
    "args",
    [(b"ed25519", "ed25519", "ab" * 32), ("ed25519", None, "ab" * 32),
     ("ed25519", "ed25519", b"ab" * 32), ("rsa", "rsassa-pss-sha256", 5),
     ("ecdsa", "ecdsa-sha2-nistp256", ["04"])],
)
def test_public_key_argument_types(core, args):
    with pytest.raises(TypeError):
        core.PublicKey(*args)


def test_public_key_ascii_only(core):
    with pytest.raises(FormatError):
        core.PublicKey("ed25519", "ed25519", "\u0661" * 64)  # Arabic-Indic digits
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", "\udcff")


def test_verify_argument_types(core, ed_key):
    key = core.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    signature = ed_key.sign(b"data")
    assert key.verify(bytearray(signature), memoryview(b"data")) is True
    assert key.verify(memoryview(signature), bytearray(b"data")) is True
    for bad in [(signature.hex(), b"data"), (signature, "data"), (None, b"data"), (signature, 5)]:
        with pytest.raises(TypeError):
            key.verify(*bad)
    with pytest.raises(TypeError):
        key.verify(signature)


def test_native_public_key_is_read_only(native, ed_key):
    key = native.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    for name in ("keytype", "scheme", "fingerprint"):
        with pytest.raises(AttributeError):
            setattr(key, name, "x")
    with pytest.raises(TypeError):
        type("Sub", (native.PublicKey,), {})
    assert native.PublicKey(keytype="ed25519", scheme="ed25519", public=ed_hex(ed_key)).fingerprint


def mixed_pairs(core, ed_key, ec_keys, rsa_keys, data):
    ed = core.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    p256 = core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec_keys["P-256"].public_key()))
    p384 = core.PublicKey("ecdsa", "ecdsa-sha2-nistp384", point(ec_keys["P-384"].public_key()).hex())
    pss = core.PublicKey("rsa", "rsassa-pss-sha512", spki_pem(rsa_keys[3072].public_key()))
    ed_sig = ed_key.sign(data)
    p256_sig = ec_keys["P-256"].sign(data, ec.ECDSA(hashes.SHA256()))
    p384_sig = ec_keys["P-384"].sign(data, ec.ECDSA(hashes.SHA384()))
    pss_sig = rsa_keys[3072].sign(data, *rsa_padding("rsassa-pss-sha512"))
    pairs = [(ed, ed_sig), (p256, p256_sig), (p384, p384_sig), (pss, pss_sig),
             (ed, p256_sig), (p256, flip(p256_sig, 10)), (pss, b""), (ed, bytearray(ed_sig)),
             (p384, memoryview(p384_sig)), (ed, ed_sig[:10])]
    return pairs, [True, True, True, True, False, False, False, True, True, False]


def test_verify_many(core, ed_key, ec_keys, rsa_keys):
    data = b"many"
    pairs, expected = mixed_pairs(core, ed_key, ec_keys, rsa_keys, data)
    assert core.verify_many(data, pairs) == expected
    assert [key.verify(sig, data) for key, sig in pairs] == expected
    assert core.verify_many(bytearray(data), pairs) == expected
    assert core.verify_many(data + b"x", pairs) == [False] * len(pairs)
    assert core.verify_many(data, []) == []


def test_verify_many_argument_types(core, ed_key):
    key = core.PublicKey("ed25519", "ed25519", ed_hex(ed_key))
    sig = ed_key.sign(b"d")
    for data, pairs in [
        ("d", [(key, sig)]),
        (b"d", [(key, sig.hex())]),
        (b"d", [("not a key", sig)]),
        (b"d", [(Key("id", "ed25519", "ed25519", {"public": ed_hex(ed_key)}), sig)]),
        (b"d", [(key, sig), (key, None)]),
        (b"d", [(key,)]),
        (b"d", [(key, sig, sig)]),
        (b"d", [key]),
        (b"d", None),
    ]:
        with pytest.raises(TypeError):
            core.verify_many(data, pairs)


# --- memory: no leaks in the native core --------------------------------------


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
        "uordblks", "fordblks", "keepcost")]


def _malloc_in_use():
    """Bytes malloc has handed out (glibc), or None where unknown (ASan)."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"))
    fn = getattr(libc, "mallinfo2", None)
    if fn is None:  # pragma: no cover - glibc < 2.33
        return None
    fn.restype = _MallInfo2
    info = fn()
    used = info.uordblks + info.hblkhd
    return used or None


def test_native_no_leaks(native, ed_key, ec_keys, rsa_keys):
    data = b"leak check"
    ed_pub = ed_hex(ed_key)
    ec_pem = spki_pem(ec_keys["P-256"].public_key())
    rsa_pem = spki_pem(rsa_keys[2048].public_key())
    pairs, expected = mixed_pairs(native, ed_key, ec_keys, rsa_keys, data)
    ed_sig = ed_key.sign(data)
    ec_sig = ec_keys["P-256"].sign(data, ec.ECDSA(hashes.SHA256()))
    rsa_sig = rsa_keys[2048].sign(data, *rsa_padding("rsassa-pss-sha256"))

    def work(rounds):
        ed = native.PublicKey("ed25519", "ed25519", ed_pub)
        eck = native.PublicKey("ecdsa", "ecdsa-sha2-nistp256", ec_pem)
        rsk = native.PublicKey("rsa", "rsassa-pss-sha256", rsa_pem)
        for i in range(rounds):
            assert ed.verify(ed_sig, data)
            if i % 10 == 0:
                assert eck.verify(ec_sig, data)
                assert not eck.verify(ec_sig[:-1], data)
                assert rsk.verify(rsa_sig, data)
                assert not rsk.verify(rsa_sig[:-1] + b"\x00", data)
                native.PublicKey("ecdsa", "ecdsa-sha2-nistp256", ec_pem)
                native.PublicKey("rsa", "rsassa-pss-sha256", rsa_pem)
                raises(FormatError, native.PublicKey, "rsa", "rsassa-pss-sha256", ec_pem)
            if i % 100 == 0:
                assert native.verify_many(data, pairs) == expected
                raises(TypeError, native.verify_many, data, pairs + [(ed, "x")])

    def raises(exc_type, fn, *args):
        try:
            fn(*args)
        except exc_type:
            return
        raise AssertionError(f"{fn} did not raise {exc_type}")  # pragma: no cover

    work(500)  # warm OpenSSL's and Python's caches
    gc.collect()
    in_use = _malloc_in_use()
    # Python objects: the smallest growth of three rounds of 3,400 calls.
    assert block_growth(work, 3400) < 100
    after = _malloc_in_use()
    if in_use is not None and after is not None:
        # Four rounds: 1,360 parses of each kind and 5,440 OpenSSL
        # verifications: a leak of 64 bytes per call would show.
        assert after - in_use < 64 * 1024


# --- tufc.keys.Key ------------------------------------------------------------

SIGSTORE_STYLE = {
    "keytype": "ecdsa",
    "scheme": "ecdsa-sha2-nistp256",
    "keyval": {"public": None},
    "keyid_hash_algorithms": ["sha256", "sha512"],
    "x-tuf-on-ci-keyowner": "@someone",
}


def key_dicts(ed_key, ec_keys, rsa_keys):
    ec_dict = copy.deepcopy(SIGSTORE_STYLE)
    ec_dict["keyval"]["public"] = spki_pem(ec_keys["P-256"].public_key())
    return {
        "ed": {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": ed_hex(ed_key)}},
        "ec": ec_dict,
        "ec-hex": {"keytype": "ecdsa-sha2-nistp384", "scheme": "ecdsa-sha2-nistp384",
                   "keyval": {"public": point(ec_keys["P-384"].public_key()).hex()}},
        "rsa": {"keytype": "rsa", "scheme": "rsassa-pss-sha384",
                "keyval": {"public": spki_pem(rsa_keys[3072].public_key()), "private": ""}},
        "oidc": {"keytype": "sigstore-oidc", "scheme": "Fulcio",
                 "keyval": {"public": "", "identity": "a@b", "issuer": "https://x"}},
    }


def test_key_dict_round_trip_matches_python_tuf(ed_key, ec_keys, rsa_keys):
    from tuf.api.metadata import Key as TufKey

    for keyid, key_dict in key_dicts(ed_key, ec_keys, rsa_keys).items():
        original = copy.deepcopy(key_dict)
        key = Key.from_dict(keyid, key_dict)
        assert key_dict == original  # not mutated
        assert key.to_dict() == original
        if keyid != "oidc":  # python-tuf refuses key types it has no class for
            assert key.to_dict() == TufKey.from_dict(keyid, copy.deepcopy(key_dict)).to_dict()
        assert key.keyid == keyid
        assert (key.keytype, key.scheme, key.keyval) == (
            original["keytype"], original["scheme"], original["keyval"])
    ec = Key.from_dict("ec", key_dicts(ed_key, ec_keys, rsa_keys)["ec"])
    assert ec.unrecognized_fields == {
        "keyid_hash_algorithms": ["sha256", "sha512"], "x-tuf-on-ci-keyowner": "@someone"}


@pytest.mark.parametrize(
    "key_dict",
    [None, [], "ed25519", {}, {"keytype": "ed25519", "scheme": "ed25519"},
     {"keytype": "ed25519", "keyval": {"public": "ab"}},
     {"scheme": "ed25519", "keyval": {"public": "ab"}},
     {"keytype": 1, "scheme": "ed25519", "keyval": {"public": "ab"}},
     {"keytype": "ed25519", "scheme": None, "keyval": {"public": "ab"}},
     {"keytype": "ed25519", "scheme": "ed25519", "keyval": ["ab"]},
     {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": 5}},
     {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": b"ab"}},
     {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab", 1: "x"}},
     {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab"}, 2: "x"}],
)
def test_key_from_dict_rejects_bad_shapes(key_dict):
    before = copy.deepcopy(key_dict)
    with pytest.raises(FormatError):
        Key.from_dict("keyid", key_dict)
    assert key_dict == before


def test_key_without_public_material_loads_but_verifies_nothing(ed_key):
    """A Sigstore-style identity key (no "public") must not break its root."""
    d = {"keytype": "sigstore-oidc", "scheme": "Fulcio",
         "keyval": {"identity": "a@example.com", "issuer": "https://issuer"}}
    key = Key.from_dict("oidc", d)
    assert key.to_dict() == d
    assert not key.supported
    assert key.verify(b"\x00" * 64, b"data") is False
    same_type = Key.from_dict("e", {"keytype": "ed25519", "scheme": "ed25519", "keyval": {}})
    assert not same_type.supported


def test_key_init_rejects_bad_types():
    with pytest.raises(FormatError):
        Key(5, "ed25519", "ed25519", {"public": "ab"})
    with pytest.raises(FormatError):
        Key("id", "ed25519", "ed25519", {"public": "ab"}, unrecognized_fields=[])
    with pytest.raises(FormatError):
        Key.from_dict(None, {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab"}})


def test_key_verify_on_each_core(keys_core, ed_key, ec_keys, rsa_keys):
    data = b"key verify"
    signatures = {
        "ed": ed_key.sign(data),
        "ec": ec_keys["P-256"].sign(data, ec.ECDSA(hashes.SHA256())),
        "ec-hex": ec_keys["P-384"].sign(data, ec.ECDSA(hashes.SHA384())),
        "rsa": rsa_keys[3072].sign(data, *rsa_padding("rsassa-pss-sha384")),
    }
    keys = {kid: Key.from_dict(kid, d) for kid, d in key_dicts(ed_key, ec_keys, rsa_keys).items()}
    for kid, signature in signatures.items():
        key = keys[kid]
        assert key.supported
        assert isinstance(key.fingerprint, bytes)
        assert key.verify(signature, data) is True
        assert key.verify(signature, data + b"?") is False
        for other, other_sig in signatures.items():
            if other != kid:
                assert key.verify(other_sig, data) is False
    with pytest.raises(TypeError):
        keys["ed"].verify(signatures["ed"].hex(), data)


def test_key_agrees_with_securesystemslib(keys_core, ed_key, ec_keys, rsa_keys):
    from securesystemslib.exceptions import UnverifiedSignatureError, VerificationError
    from securesystemslib.signer import Signature, SSlibKey

    data = b"agree"
    signatures = {
        "ed": ed_key.sign(data),
        "ec": ec_keys["P-256"].sign(data, ec.ECDSA(hashes.SHA256())),
        "rsa": rsa_keys[3072].sign(data, *rsa_padding("rsassa-pss-sha384")),
    }
    for kid, signature in signatures.items():
        key_dict = key_dicts(ed_key, ec_keys, rsa_keys)[kid]
        ours = Key.from_dict(kid, key_dict)
        theirs = SSlibKey.from_dict(kid, copy.deepcopy(key_dict))
        for sig in (signature, flip(signature, 5), signature[:-1], b"\x00" * len(signature)):
            try:
                theirs.verify_signature(Signature(kid, sig.hex()), data)
                expected = True
            except (UnverifiedSignatureError, VerificationError):
                expected = False
            assert ours.verify(sig, data) is expected


@pytest.mark.parametrize(
    "keytype, scheme, public",
    [("sigstore-oidc", "Fulcio", ""), ("ed25519", "ed25519", "zz" * 32),
     ("ecdsa", "ecdsa-sha2-nistp521", "04ab"), ("rsa", "rsassa-pss-sha256", "not pem"),
     ("ecdsa", "ecdsa-sha2-nistp256", "04" + "00" * 64)],
)
def test_unsupported_or_malformed_key_loads_but_verifies_nothing(keys_core, keytype, scheme, public):
    key = Key.from_dict("kid", {"keytype": keytype, "scheme": scheme, "keyval": {"public": public}})
    assert key.supported is False
    assert key.fingerprint is None
    assert key.verify(b"\x01" * 64, b"data") is False
    with pytest.raises(TypeError):
        key.verify("sig", b"data")
    assert key.to_dict()["keyval"] == {"public": public}


def test_key_parses_once_and_reparses_after_change(keys_core, monkeypatch, ed_key):
    calls = []
    real = keys_core.PublicKey

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(tufc.keys, "PublicKey", counting)
    key = Key("id", "ed25519", "ed25519", {"public": ed_hex(ed_key)})
    signature = ed_key.sign(b"d")
    for _ in range(5):
        assert key.verify(signature, b"d")
    assert key.supported and key.fingerprint
    assert len(calls) == 1
    other = ed25519.Ed25519PrivateKey.generate()
    key.keyval = {"public": ed_hex(other)}
    assert key.verify(signature, b"d") is False
    assert key.verify(other.sign(b"d"), b"d") is True
    key.keyval["public"] = ed_hex(ed_key)  # in place
    assert key.verify(signature, b"d") is True
    key.scheme = "ed25519ph"
    assert key.verify(signature, b"d") is False and not key.supported
    assert len(calls) == 4


def test_key_equality_and_hash():
    base = {"keytype": "ed25519", "scheme": "ed25519", "keyval": {"public": "ab" * 32}}
    a = Key.from_dict("id", copy.deepcopy(base))
    b = Key.from_dict("id", copy.deepcopy(base))
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Key.from_dict("other", copy.deepcopy(base))
    assert a != Key.from_dict("id", {**copy.deepcopy(base), "x-extra": 1})
    assert a != Key.from_dict("id", {**copy.deepcopy(base), "scheme": "ed25519ph"})
    assert a != Key.from_dict("id", {**copy.deepcopy(base), "keyval": {"public": "cd" * 32}})
    assert a != base and (a == "id") is False


def test_key_copy_and_pickle_after_use(keys_core, ed_key):
    key = Key.from_dict("id", {"keytype": "ed25519", "scheme": "ed25519",
                               "keyval": {"public": ed_hex(ed_key)}, "x-extra": [1]})
    signature = ed_key.sign(b"d")
    assert key.verify(signature, b"d")  # the core key is now cached
    for clone in (copy.copy(key), copy.deepcopy(key), pickle.loads(pickle.dumps(key))):
        assert clone == key and clone is not key
        assert clone.verify(signature, b"d") is True
    deep = copy.deepcopy(key)
    deep.unrecognized_fields["x-extra"].append(2)
    assert key.unrecognized_fields == {"x-extra": [1]}
