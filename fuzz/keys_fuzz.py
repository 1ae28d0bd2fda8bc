#!/usr/bin/env python3
"""Differential fuzzing of PublicKey parsing and verify: native core vs pure core.

Input layout: byte 0 picks the (keytype, scheme) pair (the supported ones and
some near misses), byte 1 how the key material is presented, then three
fields each prefixed by a 2-byte big-endian length: key material, signature,
message.  Presentations: 0 the material as text (PEM or hex as written),
1 the material as DER wrapped into PEM here (so mutations reach the DER
inside the base64), 2 the material as raw bytes written as hex (Ed25519 keys
and SEC1 points).  The seeds hold real keys and valid signatures made with
``cryptography``; mutations turn them into hostile keys and signatures.

Both cores must agree: the same exception class (FormatError or
UnsupportedAlgorithmError, nothing else), or the same fingerprint and the
same verdicts from ``verify`` and ``verify_many``.  Where the cores accept a
key, ``cryptography`` must load the same material, and a signature the cores
accept must verify with ``cryptography`` too.

    python fuzz/keys_fuzz.py fuzz/seeds/keys -max_total_time=600

needs ``atheris``; the seeds also run as ordinary tests
(tests/test_fuzz_seeds.py), without it.
"""

from __future__ import annotations

import base64
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from tufc import _pure
from tufc.exceptions import FormatError

try:
    from tufc import _tufc as native
except ImportError:  # pure-only install: the pure core against cryptography
    native = None

CORES = [core for core in (native, _pure) if core is not None]

SCHEMES = [
    ("ed25519", "ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp256"),
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"),
    ("ecdsa", "ecdsa-sha2-nistp384"),
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"),
    ("rsa", "rsassa-pss-sha256"),
    ("rsa", "rsassa-pss-sha384"),
    ("rsa", "rsassa-pss-sha512"),
    ("rsa", "rsa-pkcs1v15-sha256"),
    ("rsa", "rsa-pkcs1v15-sha384"),
    ("rsa", "rsa-pkcs1v15-sha512"),
    # near misses: all unsupported
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384"),
    ("rsa", "ed25519"),
    ("ED25519", "ed25519"),
    ("ecdsa", "ecdsa-sha2-nistp521"),
    ("rsa", "rsassa-pss-sha1"),
]

_HASHES = {"sha256": hashes.SHA256(), "sha384": hashes.SHA384(), "sha512": hashes.SHA512()}


def decode(data: bytes) -> tuple:
    """(keytype, scheme, public text, signature, message) from fuzz bytes."""
    keytype, scheme = SCHEMES[data[0] % len(SCHEMES)] if data else SCHEMES[0]
    mode = data[1] % 3 if len(data) > 1 else 0
    fields, pos = [], 2
    for _ in range(3):
        n = int.from_bytes(data[pos : pos + 2], "big")
        fields.append(data[pos + 2 : pos + 2 + n])
        pos += 2 + n
    material, signature, message = fields
    if mode == 1:
        body = base64.encodebytes(material).decode("ascii")
        public = f"-----BEGIN PUBLIC KEY-----\n{body}-----END PUBLIC KEY-----\n"
    elif mode == 2:
        public = material.hex()
    else:
        public = material.decode("latin-1")
    return keytype, scheme, public, signature, message


def encode(keytype: str, scheme: str, mode: int, material: bytes, signature: bytes, message: bytes) -> bytes:
    """The inverse of decode (used to write seeds)."""
    out = bytes([SCHEMES.index((keytype, scheme)), mode])
    for field in (material, signature, message):
        out += len(field).to_bytes(2, "big") + field
    return out


def _outcome(core, keytype, scheme, public, signature, message):
    try:
        key = core.PublicKey(keytype, scheme, public)
    except FormatError as exc:  # UnsupportedAlgorithmError is a subclass: compared by class
        return type(exc), None
    verdicts = [
        key.verify(signature, message),
        key.verify(bytearray(signature), memoryview(message)),
        key.verify(signature[:-1], message),
        key.verify(signature, message + b"\x00"),
        core.verify_many(message, [(key, signature), (key, signature + b"\x00"), (key, b"")]),
    ]
    return (key.keytype, key.scheme, key.fingerprint, verdicts), key


def _oracle_key(keytype: str, scheme: str, public: str):
    """cryptography's key for material the cores accepted (raises if it cannot load it)."""
    if scheme == "ed25519":
        return ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(public))
    if public.lstrip().startswith("-----BEGIN"):
        key = serialization.load_pem_public_key(public.encode("ascii"))
    else:
        curve = ec.SECP256R1() if scheme.endswith("256") else ec.SECP384R1()
        key = ec.EllipticCurvePublicKey.from_encoded_point(curve, bytes.fromhex(public))
    if scheme.startswith("ecdsa"):
        assert isinstance(key, ec.EllipticCurvePublicKey), "cores took a non-EC key as ECDSA"
        assert key.curve.name == ("secp256r1" if scheme.endswith("256") else "secp384r1"), key.curve.name
    else:
        assert isinstance(key, rsa.RSAPublicKey), "cores took a non-RSA key as RSA"
    return key


def _oracle_verify(key, scheme: str, signature: bytes, message: bytes) -> bool:
    try:
        if scheme == "ed25519":
            key.verify(signature, message)
        elif scheme.startswith("ecdsa"):
            key.verify(signature, message, ec.ECDSA(_HASHES["sha" + scheme[-3:]]))
        elif scheme.startswith("rsassa-pss"):
            pss = padding.PSS(padding.MGF1(_HASHES[scheme[-6:]]), padding.PSS.AUTO)
            key.verify(signature, message, pss, _HASHES[scheme[-6:]])
        else:
            key.verify(signature, message, padding.PKCS1v15(), _HASHES[scheme[-6:]])
    except (InvalidSignature, ValueError):
        return False
    return True


def check(data: bytes) -> None:
    """One fuzz input; raises AssertionError on any disagreement."""
    keytype, scheme, public, signature, message = decode(data)
    results = [_outcome(core, keytype, scheme, public, signature, message) for core in CORES]
    outcome, key = results[0]
    for other, _ in results[1:]:
        assert other == outcome, (outcome, other)
    if key is None:
        return
    oracle = _oracle_key(keytype, scheme, public)
    cases = [(signature, message), (signature[:-1], message), (signature, message + b"\x00")]
    verdicts = outcome[3]
    for verdict, (sig, msg) in zip((verdicts[0], verdicts[2], verdicts[3]), cases):
        if verdict:
            assert _oracle_verify(oracle, scheme, sig, msg), "a signature cryptography refuses was accepted"


def main() -> None:
    import atheris

    atheris.instrument_all()
    atheris.Setup(sys.argv, check)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
