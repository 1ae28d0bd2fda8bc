"""ECDSA and RSA keys and signatures, on both cores.

Oracles: signatures and key encodings made by the `cryptography` package
(OpenSSL), and, for verdicts on malformed or hostile input, the other core
(the native one calls OpenSSL's EVP_DigestVerify).  Ed25519 is covered in
test_ed25519_edge_cases.py.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pathlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tufc import _pure
from tufc.exceptions import FormatError, UnsupportedAlgorithmError

FIXTURE_SETTINGS = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # stateless fixtures
)

CURVES = {
    "ecdsa-sha2-nistp256": (ec.SECP256R1(), hashes.SHA256(), b"P-256"),
    "ecdsa-sha2-nistp384": (ec.SECP384R1(), hashes.SHA384(), b"P-384"),
}
HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def spki_pem(private) -> str:
    return (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )


def spki_der(private) -> bytes:
    return private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def der_to_pem(der: bytes) -> str:
    body = base64.b64encode(der).decode("ascii")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN PUBLIC KEY-----\n" + "\n".join(lines) + "\n-----END PUBLIC KEY-----\n"


def sec1(private, compressed=False) -> bytes:
    fmt = (
        serialization.PublicFormat.CompressedPoint
        if compressed
        else serialization.PublicFormat.UncompressedPoint
    )
    return private.public_key().public_bytes(serialization.Encoding.X962, fmt)


@pytest.fixture(scope="module")
def ec_keys():
    return {scheme: ec.generate_private_key(curve) for scheme, (curve, _, _) in CURVES.items()}


@pytest.fixture(scope="module")
def rsa_keys():
    return {bits: rsa.generate_private_key(65537, bits) for bits in (2048, 3072)}


def ecdsa_sign(private, scheme, message: bytes) -> bytes:
    return private.sign(message, ec.ECDSA(CURVES[scheme][1]))


# --- ECDSA: valid signatures ------------------------------------------------


@pytest.mark.parametrize("scheme", sorted(CURVES))
@pytest.mark.parametrize("encoding", ["pem", "hex", "hex-compressed"])
def test_ecdsa_signatures_by_openssl_verify(core, ec_keys, scheme, encoding):
    private = ec_keys[scheme]
    public = {
        "pem": spki_pem(private),
        "hex": sec1(private).hex(),
        "hex-compressed": sec1(private, compressed=True).hex(),
    }[encoding]
    for keytype in ("ecdsa", scheme):
        key = core.PublicKey(keytype, scheme, public)
        assert key.keytype == keytype and key.scheme == scheme
        assert key.fingerprint == CURVES[scheme][2] + b":" + sec1(private)
        for message in (b"", b"x", os.urandom(1000)):
            signature = ecdsa_sign(private, scheme, message)
            assert key.verify(signature, message) is True
            assert key.verify(signature, message + b"\x00") is False
            assert key.verify(bytearray(signature), memoryview(message)) is True


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_compressed_pem(core, ec_keys, scheme):
    private = ec_keys[scheme]
    der = private.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    compressed = sec1(private, compressed=True)
    uncompressed = sec1(private)
    # cryptography writes SPKI uncompressed; swap in the compressed point and
    # fix the three lengths (outer SEQUENCE, BIT STRING) that change.
    header = der[: len(der) - len(uncompressed)]
    shrink = len(uncompressed) - len(compressed)
    header = bytearray(header)
    header[1] -= shrink
    header[-2] -= shrink
    pem = der_to_pem(bytes(header) + compressed)
    loaded = serialization.load_pem_public_key(pem.encode())  # OpenSSL accepts it
    assert loaded.public_numbers() == private.public_key().public_numbers()
    key = core.PublicKey("ecdsa", scheme, pem)
    assert key.fingerprint == CURVES[scheme][2] + b":" + uncompressed
    assert key.verify(ecdsa_sign(private, scheme, b"m"), b"m")


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_high_s_accepted_like_openssl(core, ec_keys, scheme):
    private = ec_keys[scheme]
    n = _pure.ecdsa.P256.n if scheme.endswith("256") else _pure.ecdsa.P384.n
    signature = ecdsa_sign(private, scheme, b"msg")
    r, s = decode_dss_signature(signature)
    flipped = encode_dss_signature(r, n - s)
    # OpenSSL (through cryptography) accepts both; so must tufc.
    private.public_key().verify(flipped, b"msg", ec.ECDSA(CURVES[scheme][1]))
    key = core.PublicKey("ecdsa", scheme, spki_pem(private))
    assert key.verify(flipped, b"msg") is True


# --- ECDSA: bad signatures --------------------------------------------------


def _der_int(raw: bytes) -> bytes:
    return b"\x02" + bytes([len(raw)]) + raw


def _der_seq(content: bytes) -> bytes:
    return b"\x30" + bytes([len(content)]) + content


def _minimal(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big")


def ecdsa_mutations(signature: bytes, n: int):
    """Named malformed variants of a valid DER ECDSA signature."""
    r, s = decode_dss_signature(signature)
    rb, sb = _minimal(r), _minimal(s)
    yield "r padded with 00", _der_seq(_der_int(b"\x00" + rb) + _der_int(sb))
    yield "s padded with 00", _der_seq(_der_int(rb) + _der_int(b"\x00" + sb))
    yield "long-form length", b"\x30\x81" + bytes([len(signature) - 2]) + signature[2:]
    yield "trailing byte", signature + b"\x00"
    yield "trailing byte inside", _der_seq(_der_int(rb) + _der_int(sb) + b"\x00")
    yield "indefinite length", b"\x30\x80" + signature[2:] + b"\x00\x00"
    yield "r = 0", _der_seq(_der_int(b"\x00") + _der_int(sb))
    yield "s = 0", _der_seq(_der_int(rb) + _der_int(b"\x00"))
    yield "r = n", _der_seq(_der_int(_minimal(n)) + _der_int(sb))
    yield "s = n", _der_seq(_der_int(rb) + _der_int(_minimal(n)))
    yield "r + n", _der_seq(_der_int(_minimal(r + n)) + _der_int(sb))
    yield "negative r", _der_seq(_der_int(((1 << (8 * len(rb))) - r).to_bytes(len(rb), "big")) + _der_int(sb))
    yield "empty r", _der_seq(b"\x02\x00" + _der_int(sb))
    yield "swapped", _der_seq(_der_int(sb) + _der_int(rb))
    yield "one integer", _der_seq(_der_int(rb))
    yield "three integers", _der_seq(_der_int(rb) + _der_int(sb) + _der_int(b"\x01"))
    yield "wrong tag", b"\x31" + signature[1:]
    yield "raw r||s", r.to_bytes((n.bit_length() + 7) // 8, "big") + s.to_bytes((n.bit_length() + 7) // 8, "big")
    yield "empty", b""
    yield "truncated", signature[:-1]
    yield "sequence only", b"\x30\x00"


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_malformed_signatures_are_false(core, ec_keys, scheme):
    private = ec_keys[scheme]
    n = (_pure.ecdsa.P256 if scheme.endswith("256") else _pure.ecdsa.P384).n
    key = core.PublicKey("ecdsa", scheme, spki_pem(private))
    public = private.public_key()
    for _ in range(4):  # a few signatures: some r, s have the top bit set
        signature = ecdsa_sign(private, scheme, b"data")
        for name, bad in ecdsa_mutations(signature, n):
            # OpenSSL (through cryptography) refuses every one of them too.
            with pytest.raises(InvalidSignature):
                public.verify(bad, b"data", ec.ECDSA(CURVES[scheme][1]))
            assert key.verify(bad, b"data") is False, name


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_wrong_key_or_scheme(core, ec_keys, scheme):
    private = ec_keys[scheme]
    other = ec.generate_private_key(CURVES[scheme][0])
    signature = ecdsa_sign(private, scheme, b"data")
    assert not core.PublicKey("ecdsa", scheme, spki_pem(other)).verify(signature, b"data")
    other_scheme = next(s for s in CURVES if s != scheme)
    for public in (spki_pem(private), sec1(private).hex(), sec1(private, True).hex()):
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", other_scheme, public)


@pytest.mark.parametrize(
    "keytype, scheme",
    [
        ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"),
        ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp256"),
        ("ecdsa", "ecdsa-sha2-nistp521"),
        ("ecdsa", "ecdsa"),
        ("ecdsa-sha2-nistp521", "ecdsa-sha2-nistp521"),
        ("ed25519", "ecdsa-sha2-nistp256"),
        ("rsa", "ecdsa-sha2-nistp256"),
        ("rsa", "ed25519"),
        ("ed25519", "rsassa-pss-sha256"),
        ("rsa", "rsassa-pss-sha1"),
        ("rsa", "rsa-pkcs1v15-sha1"),
        ("rsa", "rsassa-pss-md5"),
        ("dsa", "dsa-sha256"),
        ("", ""),
        ("ED25519", "ed25519"),
        ("ed25519", "Ed25519"),
    ],
)
def test_unsupported_pairs(core, keytype, scheme):
    with pytest.raises(UnsupportedAlgorithmError):
        core.PublicKey(keytype, scheme, "00" * 32)


@pytest.mark.parametrize(
    "args",
    [
        (b"ed25519", "ed25519", "00" * 32),
        ("ed25519", None, "00" * 32),
        ("ed25519", "ed25519", b"00" * 32),
        ("ed25519", "ed25519", 0),
    ],
)
def test_non_str_arguments(core, args):
    with pytest.raises(TypeError):
        core.PublicKey(*args)


def test_verify_argument_types(core, ec_keys):
    key = core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec_keys["ecdsa-sha2-nistp256"]))
    with pytest.raises(TypeError):
        key.verify("00", b"data")
    with pytest.raises(TypeError):
        key.verify(b"\x30\x00", "data")
    with pytest.raises(TypeError):
        key.verify(None, b"data")


def _bad_points(curve_scheme, private):
    point = sec1(private)
    size = (len(point) - 1) // 2
    p = (_pure.ecdsa.P256 if curve_scheme.endswith("256") else _pure.ecdsa.P384).p
    y = int.from_bytes(point[1 + size :], "big")
    yield "y + 1", point[: 1 + size] + ((y + 1) % p).to_bytes(size, "big")
    yield "y + p", None if y + p >= 1 << (8 * size) else point[: 1 + size] + (y + p).to_bytes(size, "big")
    yield "infinity", b"\x00"
    yield "hybrid 06/07", bytes([6 + (y & 1)]) + point[1:]
    yield "wrong prefix", b"\x05" + point[1:]
    yield "x = p, compressed", b"\x02" + p.to_bytes(size, "big")
    yield "truncated", point[:-1]
    yield "extended", point + b"\x00"
    yield "all zero", b"\x04" + bytes(2 * size)
    # an x with no point on the curve (x^3 - 3x + b not a square)
    for x in range(1, 100):
        rhs = (x**3 - 3 * x + (_pure.ecdsa.P256 if curve_scheme.endswith("256") else _pure.ecdsa.P384).b) % p
        if pow(rhs, (p - 1) // 2, p) == p - 1:
            yield "x off the curve", b"\x02" + x.to_bytes(size, "big")
            break


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_bad_points(core, ec_keys, scheme):
    private = ec_keys[scheme]
    curve = CURVES[scheme][0]
    header = spki_der(private)[: -len(sec1(private))]
    for name, point in _bad_points(scheme, private):
        if point is None:
            continue
        # OpenSSL refuses each of these points too (hybrid is the exception:
        # OpenSSL parses it, tufc's contract allows 02/03/04 only).
        if name != "hybrid 06/07":
            with pytest.raises(ValueError):
                ec.EllipticCurvePublicKey.from_encoded_point(curve, point)
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", scheme, point.hex())
        if len(point) == len(sec1(private)):
            with pytest.raises(FormatError):
                core.PublicKey("ecdsa", scheme, der_to_pem(header + point))


# --- PEM and DER framing (ECDSA and RSA) -------------------------------------


def pem_variants(pem: str):
    """Accepted spellings of a PEM block (all must give the same key)."""
    body = "".join(pem.strip().splitlines()[1:-1])
    yield pem
    yield pem.replace("\n", "\r\n")
    yield "  \n" + pem + "\n\n  "
    yield "-----BEGIN PUBLIC KEY-----" + body + "-----END PUBLIC KEY-----"
    yield "-----BEGIN PUBLIC KEY-----\n" + "\n".join(body[i : i + 76] for i in range(0, len(body), 76)) + "\n-----END PUBLIC KEY-----"


def broken_pems(pem: str):
    lines = pem.strip().splitlines()
    body = "".join(lines[1:-1])
    der = base64.b64decode(body)
    yield "truncated", "\n".join(lines[:-2]) + "\n-----END PUBLIC KEY-----\n"
    yield "no END", "\n".join(lines[:-1])
    yield "no BEGIN", "\n".join(lines[1:])
    yield "body only", body
    yield "bad base64 char", pem.replace(body[10], "*", 1)
    yield "missing padding", der_to_pem(der + b"\x00").replace("=", "")
    yield "extra padding", pem.replace("-----END", "====\n-----END")
    yield "RSA PUBLIC KEY label", pem.replace("BEGIN PUBLIC", "BEGIN RSA PUBLIC").replace("END PUBLIC", "END RSA PUBLIC")
    yield "text before", "key:\n" + pem
    yield "text after", pem + "trailer\n"
    yield "two blocks", pem + pem
    yield "trailing DER byte", der_to_pem(der + b"\x00")
    yield "DER cut short", der_to_pem(der[:-1])
    yield "empty body", "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"
    yield "non-ascii", pem.replace("\n", "\u2028", 1)
    yield "empty", ""
    yield "huge", "-----BEGIN PUBLIC KEY-----\n" + "A" * 70000 + "\n-----END PUBLIC KEY-----\n"


@pytest.mark.parametrize("kind", ["ecdsa", "rsa"])
def test_pem_framing(core, ec_keys, rsa_keys, kind):
    if kind == "ecdsa":
        private, keytype, scheme = ec_keys["ecdsa-sha2-nistp256"], "ecdsa", "ecdsa-sha2-nistp256"
    else:
        private, keytype, scheme = rsa_keys[2048], "rsa", "rsassa-pss-sha256"
    pem = spki_pem(private)
    expected = core.PublicKey(keytype, scheme, pem).fingerprint
    for variant in pem_variants(pem):
        assert core.PublicKey(keytype, scheme, variant).fingerprint == expected
    for name, broken in broken_pems(pem):
        with pytest.raises(FormatError):
            core.PublicKey(keytype, scheme, broken)
            pytest.fail(name)


def test_wrong_algorithm_oid(core, ec_keys, rsa_keys):
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(rsa_keys[2048]))
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(ec_keys["ecdsa-sha2-nistp256"]))
    for curve in (ec.SECP256K1(), ec.SECP521R1(), ec.SECP224R1()):
        with pytest.raises(FormatError):
            core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec.generate_private_key(curve)))
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp384", spki_pem(ec_keys["ecdsa-sha2-nistp256"]))


@pytest.mark.parametrize("public", ["", "04", "zz", "0" * 130, "04" + "00" * 64 + "\n", " " + "04" * 65])
def test_ecdsa_malformed_hex(core, public):
    with pytest.raises(FormatError):
        core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", public)


# --- RSA --------------------------------------------------------------------


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_rsa_pss_any_salt_length(core, rsa_keys, bits, hash_name):
    private = rsa_keys[bits]
    algorithm = HASHES[hash_name]
    key = core.PublicKey("rsa", f"rsassa-pss-{hash_name}", spki_pem(private))
    pkcs1 = core.PublicKey("rsa", f"rsa-pkcs1v15-{hash_name}", spki_pem(private))
    for salt in (0, 32, algorithm.digest_size, padding.PSS.MAX_LENGTH):
        message = os.urandom(50)
        signature = private.sign(message, padding.PSS(padding.MGF1(algorithm), salt), algorithm)
        assert key.verify(signature, message) is True, salt
        assert key.verify(signature, message + b"!") is False
        assert pkcs1.verify(signature, message) is False
    other = next(h for h in HASHES if h != hash_name)
    wrong_hash = core.PublicKey("rsa", f"rsassa-pss-{other}", spki_pem(private))
    assert wrong_hash.verify(signature, message) is False


@pytest.mark.parametrize("bits", [2048, 3072])
@pytest.mark.parametrize("hash_name", sorted(HASHES))
def test_rsa_pkcs1v15(core, rsa_keys, bits, hash_name):
    private = rsa_keys[bits]
    algorithm = HASHES[hash_name]
    key = core.PublicKey("rsa", f"rsa-pkcs1v15-{hash_name}", spki_pem(private))
    message = os.urandom(50)
    signature = private.sign(message, padding.PKCS1v15(), algorithm)
    assert key.verify(signature, message) is True
    assert key.verify(signature, message[:-1]) is False
    assert core.PublicKey("rsa", f"rsassa-pss-{hash_name}", spki_pem(private)).verify(signature, message) is False
    other = next(h for h in HASHES if h != hash_name)
    assert core.PublicKey("rsa", f"rsa-pkcs1v15-{other}", spki_pem(private)).verify(signature, message) is False


def test_rsa_fingerprint_is_der_rsapublickey(core, rsa_keys):
    private = rsa_keys[2048]
    pkcs1 = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    for scheme in ("rsassa-pss-sha256", "rsa-pkcs1v15-sha512"):
        assert core.PublicKey("rsa", scheme, spki_pem(private)).fingerprint == b"rsa:" + pkcs1


def _signature_with_leading_zero(private, make):
    for i in range(5000):
        message = b"%d" % i
        signature = make(message)
        if signature[0] == 0:
            return message, signature
    raise AssertionError("no signature with a leading zero byte")  # p ~ 1e-9


def test_rsa_signature_length_rules_match_openssl(core, rsa_keys):
    private = rsa_keys[2048]
    public = private.public_key()
    sha256 = hashes.SHA256()
    pss_pad = padding.PSS(padding.MGF1(sha256), 32)
    auto = padding.PSS(padding.MGF1(sha256), padding.PSS.AUTO)
    pss = core.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(private))
    pkcs1 = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", spki_pem(private))

    def openssl_accepts(signature, message, pad):
        try:
            public.verify(signature, message, pad, sha256)
            return True
        except InvalidSignature:
            return False

    message, signature = _signature_with_leading_zero(private, lambda m: private.sign(m, pss_pad, sha256))
    for candidate in (signature, signature[1:], b"\x00" + signature):
        assert pss.verify(candidate, message) is openssl_accepts(candidate, message, auto)
    assert pss.verify(signature[1:], message) is True  # leading zero stripped: OpenSSL accepts
    assert pss.verify(b"\x00" + signature, message) is False

    message, signature = _signature_with_leading_zero(private, lambda m: private.sign(m, padding.PKCS1v15(), sha256))
    for candidate in (signature, signature[1:], b"\x00" + signature):
        assert pkcs1.verify(candidate, message) is openssl_accepts(candidate, message, padding.PKCS1v15())
    assert pkcs1.verify(signature[1:], message) is False

    n = public.public_numbers().n
    too_big = n.to_bytes(256, "big")
    assert pss.verify(too_big, b"m") is False and pkcs1.verify(too_big, b"m") is False
    for garbage in (b"", b"\x00", b"\xff" * 256, b"\x00" * 256, b"\x01" * 255):
        assert pss.verify(garbage, b"m") is False and pkcs1.verify(garbage, b"m") is False


def _rsa_spki(n: int, e: int, params: bytes = b"\x05\x00") -> str:
    def integer(v):
        raw = v.to_bytes(v.bit_length() // 8 + 1, "big")
        return b"\x02" + _der_len(len(raw)) + raw

    rsapub = b"\x30" + _der_len(len(integer(n) + integer(e))) + integer(n) + integer(e)
    bitstring = b"\x03" + _der_len(len(rsapub) + 1) + b"\x00" + rsapub
    alg = b"\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01" + params
    alg = b"\x30" + _der_len(len(alg)) + alg
    return der_to_pem(b"\x30" + _der_len(len(alg + bitstring)) + alg + bitstring)


def _der_len(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def test_rsa_spki_builder_matches_openssl(rsa_keys):
    # the builder below is only trusted because it reproduces OpenSSL's bytes
    private = rsa_keys[2048]
    numbers = private.public_key().public_numbers()
    assert _rsa_spki(numbers.n, numbers.e) == spki_pem(private)


@pytest.mark.parametrize(
    "description, n_bits, e, params",
    [
        ("even exponent", 2048, 65536, b"\x05\x00"),
        ("e = 1", 2048, 1, b"\x05\x00"),
        ("e >= 2**64", 2048, 2**64 + 1, b"\x05\x00"),
        ("512-bit modulus", 512, 65537, b"\x05\x00"),
        ("1000-bit modulus", 1000, 65537, b"\x05\x00"),
        ("parameters absent", 2048, 65537, b""),
        ("parameters not NULL", 2048, 65537, b"\x02\x01\x00"),
    ],
)
def test_rsa_refused_keys(core, description, n_bits, e, params):
    n = (1 << (n_bits - 1)) | 0xB5  # any odd number of the right size
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", _rsa_spki(n, e, params))


@pytest.mark.parametrize("n_bits, e", [(1024, 3), (2048, 2**64 - 1), (4096, 65537)])
def test_rsa_accepted_key_shapes(core, n_bits, e):
    n = (1 << (n_bits - 1)) | 0xB5
    key = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", _rsa_spki(n, e))
    assert key.verify(b"\x01" * (n_bits // 8), b"m") is False


def test_rsa_non_minimal_der_refused(core, rsa_keys):
    numbers = rsa_keys[2048].public_key().public_numbers()
    pem = _rsa_spki(numbers.n, numbers.e)
    der = base64.b64decode("".join(pem.strip().splitlines()[1:-1]))
    # The AlgorithmIdentifier's length in long form (81 0d) where the short
    # form fits: BER, not DER.  OpenSSL's own parser would accept it
    # (`openssl pkey -inform DER` does); tufc accepts canonical DER only.
    alg_at = 4
    assert der[alg_at] == 0x30 and der[alg_at + 1] == 0x0D
    bad = der[:alg_at] + b"\x30\x81\x0d" + der[alg_at + 2 :]
    bad = bad[:2] + (int.from_bytes(bad[2:4], "big") + 1).to_bytes(2, "big") + bad[4:]
    with pytest.raises(FormatError):
        core.PublicKey("rsa", "rsassa-pss-sha256", der_to_pem(bad))


# --- hypothesis: cryptography signs, the pure core verifies ------------------


@FIXTURE_SETTINGS
@given(message=st.binary(max_size=200), bit=st.integers(min_value=0))
def test_ecdsa_property(ec_keys, message, bit):
    for scheme, private in ec_keys.items():
        key = _pure.PublicKey("ecdsa", scheme, spki_pem(private))
        signature = ecdsa_sign(private, scheme, message)
        assert key.verify(signature, message)
        flipped = bytearray(signature)
        flipped[(bit // 8) % len(flipped)] ^= 1 << (bit % 8)
        assert not key.verify(bytes(flipped), message)
        if message:
            tampered = bytearray(message)
            tampered[(bit // 8) % len(tampered)] ^= 1 << (bit % 8)
            assert not key.verify(signature, bytes(tampered))


@FIXTURE_SETTINGS
@given(message=st.binary(max_size=200), bit=st.integers(min_value=0), salt=st.integers(0, 64))
def test_rsa_property(rsa_keys, message, bit, salt):
    private = rsa_keys[2048]
    pss = _pure.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(private))
    pkcs1 = _pure.PublicKey("rsa", "rsa-pkcs1v15-sha256", spki_pem(private))
    sha256 = hashes.SHA256()
    for key, signature in (
        (pss, private.sign(message, padding.PSS(padding.MGF1(sha256), salt), sha256)),
        (pkcs1, private.sign(message, padding.PKCS1v15(), sha256)),
    ):
        assert key.verify(signature, message)
        flipped = bytearray(signature)
        flipped[(bit // 8) % len(flipped)] ^= 1 << (bit % 8)
        assert not key.verify(bytes(flipped), message)


# --- differential: pure against native on the same inputs --------------------


def _pairs(ec_keys, rsa_keys):
    for scheme, private in ec_keys.items():
        yield ("ecdsa", scheme, spki_pem(private)), ecdsa_sign(private, scheme, b"data")
    sha256 = hashes.SHA256()
    private = rsa_keys[2048]
    yield ("rsa", "rsassa-pss-sha256", spki_pem(private)), private.sign(
        b"data", padding.PSS(padding.MGF1(sha256), 20), sha256
    )
    yield ("rsa", "rsa-pkcs1v15-sha256", spki_pem(private)), private.sign(b"data", padding.PKCS1v15(), sha256)


def test_differential_single_byte_mutations(native, ec_keys, rsa_keys):
    for spec, signature in _pairs(ec_keys, rsa_keys):
        pure_key, native_key = _pure.PublicKey(*spec), native.PublicKey(*spec)
        assert pure_key.fingerprint == native_key.fingerprint
        candidates = [signature, signature[:-1], signature + b"\x00", b"\x00" + signature, signature[1:]]
        for i in range(0, len(signature), max(1, len(signature) // 24)):
            for delta in (1, 0x80):
                mutated = bytearray(signature)
                mutated[i] ^= delta
                candidates.append(bytes(mutated))
        for candidate in candidates:
            assert pure_key.verify(candidate, b"data") is native_key.verify(candidate, b"data"), (spec[:2], candidate.hex())


@FIXTURE_SETTINGS
@given(garbage=st.binary(max_size=600), data=st.binary(max_size=20))
def test_differential_garbage_signatures(native, ec_keys, rsa_keys, garbage, data):
    for spec, _ in _pairs(ec_keys, rsa_keys):
        assert _pure.PublicKey(*spec).verify(garbage, data) is native.PublicKey(*spec).verify(garbage, data)


@FIXTURE_SETTINGS
@given(der=st.binary(max_size=120))
def test_differential_garbage_ecdsa_der(native, ec_keys, der):
    # Random DER-shaped signatures: a SEQUENCE of two INTEGERs with random bytes.
    key_pem = spki_pem(ec_keys["ecdsa-sha2-nistp256"])
    half = len(der) // 2
    signature = _der_seq(_der_int(der[:half]) + _der_int(der[half:]))
    pure_key = _pure.PublicKey("ecdsa", "ecdsa-sha2-nistp256", key_pem)
    native_key = native.PublicKey("ecdsa", "ecdsa-sha2-nistp256", key_pem)
    assert pure_key.verify(signature, b"d") is native_key.verify(signature, b"d") is False


def _outcome(core, *args):
    try:
        key = core.PublicKey(*args)
    except FormatError:
        return "FormatError"
    return key.fingerprint


@FIXTURE_SETTINGS
@given(data=st.data())
def test_differential_mutated_key_material(native, ec_keys, rsa_keys, data):
    choices = [
        ("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec_keys["ecdsa-sha2-nistp256"])),
        ("ecdsa", "ecdsa-sha2-nistp384", sec1(ec_keys["ecdsa-sha2-nistp384"]).hex()),
        ("ecdsa", "ecdsa-sha2-nistp256", sec1(ec_keys["ecdsa-sha2-nistp256"], True).hex()),
        ("rsa", "rsassa-pss-sha256", spki_pem(rsa_keys[2048])),
    ]
    keytype, scheme, public = data.draw(st.sampled_from(choices))
    if public.startswith("-----"):
        der = bytearray(base64.b64decode("".join(public.strip().splitlines()[1:-1])))
        index = data.draw(st.integers(0, len(der) - 1))
        der[index] = data.draw(st.integers(0, 255))
        public = der_to_pem(bytes(der))
    else:
        index = data.draw(st.integers(0, len(public) - 1))
        public = public[:index] + data.draw(st.sampled_from("0123456789abcdefABCDEF g")) + public[index + 1 :]
    assert _outcome(_pure, keytype, scheme, public) == _outcome(native, keytype, scheme, public)


def test_verify_many(core, ec_keys, rsa_keys):
    specs = list(_pairs(ec_keys, rsa_keys))
    pairs = [(core.PublicKey(*spec), sig) for spec, sig in specs]
    pairs += [(core.PublicKey(*spec), sig[:-1]) for spec, sig in specs]
    expected = [key.verify(sig, b"data") for key, sig in pairs]
    assert core.verify_many(b"data", pairs) == expected
    assert expected == [True] * len(specs) + [False] * len(specs)
    assert core.verify_many(b"data", []) == []


def test_verify_many_argument_rules(core, ec_keys):
    key = core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec_keys["ecdsa-sha2-nistp256"]))
    assert core.verify_many(b"d", ((key, b"x"),)) == [False]
    assert core.verify_many(bytearray(b"d"), [(key, bytearray(b"x"))]) == [False]
    for pairs in ([[key, b"x"]], [(key,)], [(key, b"x", 1)], [("key", b"x")], [(key, "x")], [key], None):
        with pytest.raises(TypeError):
            core.verify_many(b"d", pairs)
    with pytest.raises(TypeError):
        core.verify_many("d", [(key, b"x")])


# --- hand-made encoded messages (raw RSA with the private exponent) ------------


def _mgf1(seed: bytes, length: int) -> bytes:
    out = b""
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return out[:length]


def _pss_em(message: bytes, salt: bytes, em_bits: int, *, separator=1, trailer=0xBC, set_top=False, pad_garbage=False):
    """EMSA-PSS-ENCODE (RFC 8017 9.1.1) with SHA-256, with optional defects."""
    em_len = (em_bits + 7) // 8
    m_hash = hashlib.sha256(message).digest()
    h = hashlib.sha256(b"\x00" * 8 + m_hash + salt).digest()
    ps_len = em_len - len(salt) - len(h) - 2
    ps = bytes([0x5A]) + bytes(ps_len - 1) if pad_garbage and ps_len else bytes(ps_len)
    db = ps + bytes([separator]) + salt
    masked = bytearray(a ^ b for a, b in zip(db, _mgf1(h, len(db))))
    unused = 8 * em_len - em_bits
    masked[0] &= 0xFF >> unused
    if set_top and unused:
        masked[0] |= 0x80
    return bytes(masked) + h + bytes([trailer])


def _raw_sign(private, em: bytes) -> bytes:
    numbers = private.private_numbers()
    n = numbers.public_numbers.n
    k = (n.bit_length() + 7) // 8
    return pow(int.from_bytes(em, "big"), numbers.d, n).to_bytes(k, "big")


@pytest.fixture(scope="module")
def rsa_odd_key():
    # 2049 bits: emBits = 2048 is a multiple of 8, so EM is one byte shorter
    # than the modulus (RFC 8017's "emLen = k - 1" case).
    return rsa.generate_private_key(65537, 2049)


@pytest.mark.parametrize("which", ["even", "odd"])
def test_rsa_pss_crafted_encodings(core, rsa_keys, rsa_odd_key, which):
    private = rsa_keys[2048] if which == "even" else rsa_odd_key
    n_bits = private.key_size
    em_bits = n_bits - 1
    key = core.PublicKey("rsa", "rsassa-pss-sha256", spki_pem(private))
    sha256 = hashes.SHA256()
    max_salt = (em_bits + 7) // 8 - 32 - 2
    # cryptography's own PSS signatures for this key size first
    signature = private.sign(b"m", padding.PSS(padding.MGF1(sha256), padding.PSS.MAX_LENGTH), sha256)
    assert key.verify(signature, b"m")
    for salt_len in (0, 1, 20, 32, 64, max_salt):
        salt = os.urandom(salt_len)
        assert key.verify(_raw_sign(private, _pss_em(b"m", salt, em_bits)), b"m"), salt_len
    salt = os.urandom(32)
    for defect in (
        {"separator": 2},
        {"separator": 0},
        {"trailer": 0xBD},
        {"set_top": True},
        {"pad_garbage": True},
    ):
        if defect.get("set_top") and n_bits % 8 == 1:
            continue  # no unused bit to set when emBits is a multiple of 8
        em = _pss_em(b"m", salt, em_bits, **defect)
        assert key.verify(_raw_sign(private, em), b"m") is False, defect
    if n_bits % 8 == 1:
        # the leading byte of the k-byte block must be zero
        em = _pss_em(b"m", salt, em_bits)
        n = private.public_key().public_numbers().n
        forged = (1 << (8 * len(em))) + int.from_bytes(em, "big")
        if forged < n:
            signature = pow(forged, private.private_numbers().d, n).to_bytes(len(em) + 1, "big")
            assert key.verify(signature, b"m") is False


def _pkcs1_em(k: int, digest_info: bytes, *, ff=None, first=b"\x00\x01", sep=b"\x00"):
    ff_len = k - 3 - len(digest_info) if ff is None else ff
    return first + b"\xff" * ff_len + sep + digest_info


SHA256_PREFIX = bytes.fromhex("3031300d060960864801650304020105000420")


def test_rsa_pkcs1v15_crafted_encodings(core, rsa_keys):
    private = rsa_keys[2048]
    k = 256
    key = core.PublicKey("rsa", "rsa-pkcs1v15-sha256", spki_pem(private))
    digest = hashlib.sha256(b"m").digest()
    good = _pkcs1_em(k, SHA256_PREFIX + digest)
    assert len(good) == k
    assert key.verify(_raw_sign(private, good), b"m") is True
    no_null = bytes.fromhex("302f300b0609608648016503040201") + bytes.fromhex("0420") + digest
    bad_ems = [
        ("DigestInfo without NULL", _pkcs1_em(k, no_null)),
        ("block type 2", _pkcs1_em(k, SHA256_PREFIX + digest, first=b"\x00\x02")),
        ("short padding then zeros", b"\x00\x01" + b"\xff" * 7 + b"\x00" * (k - 10 - 51) + b"\x00" + SHA256_PREFIX + digest),
        ("garbage after digest", _pkcs1_em(k, SHA256_PREFIX + digest + b"\x00", ff=k - 3 - 52)),
        ("separator 01", _pkcs1_em(k, SHA256_PREFIX + digest, sep=b"\x01")),
        ("sha512 DigestInfo", _pkcs1_em(k, bytes.fromhex("3051300d060960864801650304020305000440") + hashlib.sha512(b"m").digest())),
    ]
    for name, em in bad_ems:
        assert len(em) == k, name
        assert key.verify(_raw_sign(private, em), b"m") is False, name


# --- published vectors ----------------------------------------------------------


@pytest.mark.parametrize("index", range(4))
def test_rfc6979_vectors(core, index):
    vectors = json.loads((pathlib.Path(__file__).parent / "vectors" / "rfc6979_ecdsa.json").read_text())
    vector = vectors[index]
    point = "04" + vector["public_x"] + vector["public_y"]
    signature = encode_dss_signature(int(vector["r"], 16), int(vector["s"], 16))
    message = vector["message"].encode()
    curve = CURVES[vector["scheme"]][0]
    public = ec.EllipticCurvePublicNumbers(int(vector["public_x"], 16), int(vector["public_y"], 16), curve)
    pem = (
        public.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    for public_string in (point, point.upper(), pem):
        key = core.PublicKey("ecdsa", vector["scheme"], public_string)
        assert key.fingerprint == vector["curve"].encode() + b":" + bytes.fromhex(point)
        assert key.verify(signature, message) is True
        assert key.verify(signature, message + b".") is False


def test_attributes_are_read_only(core, ec_keys):
    key = core.PublicKey("ecdsa", "ecdsa-sha2-nistp256", spki_pem(ec_keys["ecdsa-sha2-nistp256"]))
    for name in ("keytype", "scheme", "fingerprint"):
        with pytest.raises(AttributeError):
            setattr(key, name, "x")
    assert key.keytype == "ecdsa" and key.scheme == "ecdsa-sha2-nistp256"


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_sum_at_infinity_is_false(core, scheme):
    # With d = -e/r mod n, u1*G + u2*Q = w*(e + r*d)*G is the point at
    # infinity for every s: a verifier must refuse rather than read an x.
    curve, algorithm, _ = CURVES[scheme]
    n = (_pure.ecdsa.P256 if scheme.endswith("256") else _pure.ecdsa.P384).n
    message = b"infinity"
    digest = hashes.Hash(algorithm)
    digest.update(message)
    e = int.from_bytes(digest.finalize(), "big")
    r = 0x1234567
    d = (-e * pow(r, -1, n)) % n
    private = ec.derive_private_key(d, curve)
    key = core.PublicKey("ecdsa", scheme, spki_pem(private))
    for s in (1, 2, n - 1, 0xABCDEF):
        signature = encode_dss_signature(r, s)
        with pytest.raises(InvalidSignature):
            private.public_key().verify(signature, message, ec.ECDSA(algorithm))
        assert key.verify(signature, message) is False
    # the key itself is fine: an honest signature verifies
    assert key.verify(private.sign(message, ec.ECDSA(algorithm)), message) is True


@pytest.mark.parametrize("scheme", sorted(CURVES))
def test_ecdsa_keys_related_to_the_generator(core, scheme):
    # Q = G, 2G, -G: the two scalar multiplications then add equal or
    # opposite points, the special cases of the addition formula.
    curve, algorithm, _ = CURVES[scheme]
    n = (_pure.ecdsa.P256 if scheme.endswith("256") else _pure.ecdsa.P384).n
    for d in (1, 2, n - 1, n - 2):
        private = ec.derive_private_key(d, curve)
        key = core.PublicKey("ecdsa", scheme, spki_pem(private))
        for i in range(8):
            message = b"generator %d" % i
            signature = private.sign(message, ec.ECDSA(algorithm))
            assert key.verify(signature, message) is True
            assert key.verify(signature, message + b"?") is False
