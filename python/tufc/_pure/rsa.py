"""RSA signature verification (RFC 8017) in pure Python.

Gives OpenSSL 3's verdict (what the native core's EVP_DigestVerify does):

* RSASSA-PSS: MGF1 with the message hash, any salt length (recovered from
  the encoded message).  A signature may be shorter than the modulus (leading
  zero bytes stripped), never longer.
* RSASSA-PKCS1-v1_5: the signature must be exactly as long as the modulus,
  and the whole encoded message (00 01 FF.. 00 DigestInfo) must match.
* Keys: an rsaEncryption SubjectPublicKeyInfo (NULL parameters), 1024 to
  16384 bits (odd), odd e with 3 <= e < 2**64; anything else is a FormatError.
  OpenSSL's own limits (e < n; e at most 64 bits above 3072 bits) are
  kept for keys built from (n, e) directly: beyond them nothing verifies.
"""

from __future__ import annotations

import hashlib
import hmac

from ..exceptions import FormatError
from . import der

# DER DigestInfo prefixes (RFC 8017 section 9.2, note 1).
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}

# tufc refuses weak or odd keys outright (FormatError), like the native core.
MIN_MODULUS_BITS = 1024
MAX_MODULUS_BITS = 16384
MAX_EXPONENT_BITS = 64
# OpenSSL's own limits, for keys built directly from (n, e).
SMALL_MODULUS_BITS = 3072
MAX_SMALL_EXPONENT_BITS = 64


def _mgf1(hash_name: str, seed: bytes, length: int) -> bytes:
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.new(hash_name, seed + counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:length])


class RsaPublicKey:
    """An RSA public key (n, e) read from a PEM SubjectPublicKeyInfo."""

    __slots__ = ("n", "e", "size", "fingerprint", "_usable")

    def __init__(self, n: int, e: int):
        self.n = n
        self.e = e
        self.size = (n.bit_length() + 7) // 8
        self.fingerprint = b"rsa:" + der.encode_sequence(
            der.encode_positive_integer(n), der.encode_positive_integer(e)
        )
        bits = n.bit_length()
        self._usable = (
            bits <= MAX_MODULUS_BITS
            and e < n
            and (bits <= SMALL_MODULUS_BITS or e.bit_length() <= MAX_SMALL_EXPONENT_BITS)
        )

    @classmethod
    def from_pem(cls, public: str) -> "RsaPublicKey":
        algorithm, parameters, key = der.read_spki(der.pem_to_der(public))
        if algorithm != der.OID_RSA_ENCRYPTION:
            raise FormatError("not an rsaEncryption SubjectPublicKeyInfo")
        if parameters != b"\x05\x00":
            raise FormatError("rsaEncryption parameters must be NULL")
        n, e = der.read_rsa_public_key(key)
        if not MIN_MODULUS_BITS <= n.bit_length() <= MAX_MODULUS_BITS:
            raise FormatError("RSA modulus must have 1024 to 16384 bits")
        if n % 2 == 0:
            raise FormatError("RSA modulus must be odd")
        if e < 3 or e % 2 == 0 or e.bit_length() > MAX_EXPONENT_BITS:
            raise FormatError("RSA public exponent must be odd, at least 3 and below 2**64")
        return cls(n, e)

    def _encoded_message(self, signature: bytes, exact_length: bool):
        """s^e mod n as k bytes, or None when OpenSSL would refuse the input."""
        if not self._usable or not signature:
            return None
        if len(signature) > self.size or (exact_length and len(signature) != self.size):
            return None
        s = int.from_bytes(signature, "big")
        if s >= self.n:
            return None
        return pow(s, self.e, self.n).to_bytes(self.size, "big")

    def verify_pkcs1v15(self, hash_name: str, signature: bytes, data: bytes) -> bool:
        em = self._encoded_message(signature, exact_length=True)
        if em is None:
            return False
        t = _DIGEST_INFO[hash_name] + hashlib.new(hash_name, data).digest()
        padding = self.size - len(t) - 3
        if padding < 8:
            return False
        expected = b"\x00\x01" + b"\xff" * padding + b"\x00" + t
        return hmac.compare_digest(em, expected)

    def verify_pss(self, hash_name: str, signature: bytes, data: bytes) -> bool:
        em = self._encoded_message(signature, exact_length=False)
        if em is None:
            return False
        m_hash = hashlib.new(hash_name, data).digest()
        h_len = len(m_hash)
        em_bits = self.n.bit_length() - 1
        top_bits = em_bits & 7  # bits of the first EM byte in use (0: none)
        if em[0] & (0xFF << top_bits) & 0xFF:
            return False
        if top_bits == 0:
            em = em[1:]
        if len(em) < h_len + 2 or em[-1] != 0xBC:
            return False
        masked_db = em[: len(em) - h_len - 1]
        h = em[len(em) - h_len - 1 : -1]
        mask = _mgf1(hash_name, h, len(masked_db))
        db = bytearray(a ^ b for a, b in zip(masked_db, mask))
        if top_bits:
            db[0] &= 0xFF >> (8 - top_bits)
        index = 0
        while index < len(db) - 1 and db[index] == 0:
            index += 1
        if db[index] != 1:
            return False
        salt = bytes(db[index + 1 :])
        m_prime = b"\x00" * 8 + m_hash + salt
        return hmac.compare_digest(hashlib.new(hash_name, m_prime).digest(), h)
