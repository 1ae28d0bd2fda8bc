"""Public keys in pure Python: parse once, verify many times.

The twin of the native ``PublicKey`` (``_tufc/keys.c``): the same supported
(keytype, scheme) pairs, the same exceptions, the same verdicts.  The
algorithms live in ``ed25519``, ``ecdsa`` and ``rsa``; this module only
dispatches on the (keytype, scheme) pair.
"""

from __future__ import annotations

import re

from ..exceptions import FormatError, UnsupportedAlgorithmError
from . import ecdsa, ed25519, rsa

MAX_PUBLIC_CHARS = 65536

_ED25519_HEX = re.compile(r"[0-9a-fA-F]{64}")

# (keytype, scheme) -> curve: the keytype names the curve or is plain "ecdsa".
_ECDSA = {
    ("ecdsa", "ecdsa-sha2-nistp256"): ecdsa.P256,
    ("ecdsa-sha2-nistp256", "ecdsa-sha2-nistp256"): ecdsa.P256,
    ("ecdsa", "ecdsa-sha2-nistp384"): ecdsa.P384,
    ("ecdsa-sha2-nistp384", "ecdsa-sha2-nistp384"): ecdsa.P384,
}
_RSA_SCHEMES = {
    "rsassa-pss-sha256": ("pss", "sha256"),
    "rsassa-pss-sha384": ("pss", "sha384"),
    "rsassa-pss-sha512": ("pss", "sha512"),
    "rsa-pkcs1v15-sha256": ("pkcs1v15", "sha256"),
    "rsa-pkcs1v15-sha384": ("pkcs1v15", "sha384"),
    "rsa-pkcs1v15-sha512": ("pkcs1v15", "sha512"),
}


def _as_bytes(value, what: str) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        raise TypeError(f"{what} must be bytes, not str")
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise TypeError(f"{what} must be bytes, not {type(value).__name__}") from None


class PublicKey:
    """A public key of a supported (keytype, scheme), parsed once."""

    __slots__ = ("_keytype", "_scheme", "_fingerprint", "_verify")

    def __init__(self, keytype: str, scheme: str, public: str):
        for name, value in (("keytype", keytype), ("scheme", scheme), ("public", public)):
            if not isinstance(value, str):
                raise TypeError(f"{name} must be str, not {type(value).__name__}")
        if keytype == "ed25519" and scheme == "ed25519":
            parse = self._init_ed25519
        elif (keytype, scheme) in _ECDSA:
            parse = lambda public: self._init_ecdsa(_ECDSA[keytype, scheme], public)  # noqa: E731
        elif keytype == "rsa" and scheme in _RSA_SCHEMES:
            parse = lambda public: self._init_rsa(*_RSA_SCHEMES[scheme], public)  # noqa: E731
        else:
            raise UnsupportedAlgorithmError(
                f"unsupported keytype/scheme: {keytype!r}/{scheme!r}"
            )
        if len(public) > MAX_PUBLIC_CHARS or not public.isascii():
            raise FormatError(
                f"public key material must be ASCII and at most {MAX_PUBLIC_CHARS} characters"
            )
        self._keytype = keytype
        self._scheme = scheme
        parse(public)

    # Read-only, as in the native type: the fingerprint counts keys once.
    keytype = property(lambda self: self._keytype, doc="The TUF key type.")
    scheme = property(lambda self: self._scheme, doc="The TUF signature scheme.")
    fingerprint = property(
        lambda self: self._fingerprint,
        doc="Canonical encoding of the key material, whatever its encoding.",
    )

    def _init_ed25519(self, public: str) -> None:
        if not _ED25519_HEX.fullmatch(public):
            raise FormatError("an ed25519 public key must be 64 hex characters")
        raw = bytes.fromhex(public)
        point = ed25519.public_key_point(raw)  # None: every verify is False
        self._fingerprint = raw
        self._verify = lambda sig, data: ed25519.verify(point, raw, sig, data)

    def _init_ecdsa(self, curve, public: str) -> None:
        key = ecdsa.EcdsaPublicKey.from_string(curve, public)
        self._fingerprint = key.fingerprint
        self._verify = key.verify

    def _init_rsa(self, padding: str, hash_name: str, public: str) -> None:
        key = rsa.RsaPublicKey.from_pem(public)
        self._fingerprint = key.fingerprint
        if padding == "pss":
            self._verify = lambda sig, data: key.verify_pss(hash_name, sig, data)
        else:
            self._verify = lambda sig, data: key.verify_pkcs1v15(hash_name, sig, data)

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True when ``signature`` is valid for ``data``; never raises on content."""
        signature = _as_bytes(signature, "signature")
        data = _as_bytes(data, "data")
        return self._verify(signature, data)

    def __repr__(self) -> str:
        return f"PublicKey({self.keytype!r}, {self.scheme!r})"


def verify_many(data: bytes, pairs) -> list:
    """``[key.verify(signature, data) for key, signature in pairs]``.

    Every pair must be a 2-tuple (PublicKey, bytes), as the native core
    requires; all are checked before any signature is verified.
    """
    data = _as_bytes(data, "data")
    checked = []
    for pair in pairs:
        if not isinstance(pair, tuple) or len(pair) != 2:
            raise TypeError("verify_many expects (PublicKey, signature) tuples")
        key, signature = pair
        if not isinstance(key, PublicKey):
            raise TypeError(f"expected a PublicKey, not {type(key).__name__}")
        checked.append((key, _as_bytes(signature, "signature")))
    return [key._verify(signature, data) for key, signature in checked]
