"""Key generation and signing for repositories (server side).

Clients never sign; this exists so tufc can build and re-sign metadata
(``Metadata.sign``) without securesystemslib.
"""

from __future__ import annotations

import hashlib
import os

from . import _backend
from .exceptions import FormatError
from .keys import Key

__all__ = ["Ed25519Signer", "compute_keyid"]


def compute_keyid(keytype: str, scheme: str, keyval: dict) -> str:
    """The usual TUF key id: hex sha256 of the canonical JSON key dict."""
    key_dict = {"keytype": keytype, "scheme": scheme, "keyval": keyval}
    return hashlib.sha256(_backend.canonical_json(key_dict)).hexdigest()


class Ed25519Signer:
    """Signs with an Ed25519 private key given as its 32-byte seed."""

    __slots__ = ("_seed", "public_key")

    def __init__(self, seed: bytes):
        if not isinstance(seed, (bytes, bytearray)):
            raise TypeError("seed must be bytes")
        if len(seed) != 32:
            raise FormatError("an Ed25519 seed is 32 bytes")
        self._seed = bytes(seed)
        public = _backend.ed25519_public_key(self._seed).hex()
        keyval = {"public": public}
        keyid = compute_keyid("ed25519", "ed25519", keyval)
        self.public_key = Key(keyid, "ed25519", "ed25519", keyval)

    @classmethod
    def generate(cls) -> Ed25519Signer:
        """A signer with a fresh random key (os.urandom)."""
        return cls(os.urandom(32))

    @property
    def private_bytes(self) -> bytes:
        """The 32-byte seed: store it securely to sign again later."""
        return self._seed

    def sign(self, data: bytes) -> str:
        """Hex Ed25519 signature of ``data``."""
        return _backend.ed25519_sign(self._seed, bytes(data)).hex()

    def __repr__(self) -> str:
        return f"Ed25519Signer(keyid={self.public_key.keyid!r})"
