"""A small, strict DER and PEM reader: just enough for public keys.

Reads the SubjectPublicKeyInfo of RSA and EC keys (RFC 5280, RFC 5480,
RFC 8017) and ECDSA-Sig-Value (RFC 3279).  Only DER is accepted: definite,
minimal lengths; minimal INTEGERs; no trailing bytes.  Every defect raises
``FormatError``.
"""

from __future__ import annotations

import base64
import binascii
import re

from ..exceptions import FormatError

SEQUENCE = 0x30
INTEGER = 0x02
BIT_STRING = 0x03
NULL = 0x05
OID = 0x06

# Object identifiers, as their DER content bytes.
OID_RSA_ENCRYPTION = bytes.fromhex("2a864886f70d010101")  # 1.2.840.113549.1.1.1
OID_EC_PUBLIC_KEY = bytes.fromhex("2a8648ce3d0201")  # 1.2.840.10045.2.1
OID_P256 = bytes.fromhex("2a8648ce3d030107")  # 1.2.840.10045.3.1.7
OID_P384 = bytes.fromhex("2b81040022")  # 1.3.132.0.34

# A public key this large is not a public key (an RSA-16384 SPKI is ~2 KiB).
MAX_PEM_LENGTH = 65536

_PEM_BODY = re.compile(
    r"-----BEGIN PUBLIC KEY-----"
    r"([A-Za-z0-9+/=\s]*)"
    r"-----END PUBLIC KEY-----",
    re.ASCII,
)
_WHITESPACE = re.compile(r"\s+", re.ASCII)


def pem_to_der(pem: str) -> bytes:
    """The DER bytes of one PEM "PUBLIC KEY" block.

    Surrounding whitespace and whitespace inside the base64 body (line
    breaks of any length) are allowed; anything else is a ``FormatError``.
    """
    if len(pem) > MAX_PEM_LENGTH:
        raise FormatError("PEM public key too long")
    match = _PEM_BODY.fullmatch(pem.strip(" \t\r\n"))
    if match is None:
        raise FormatError("not a PEM 'PUBLIC KEY' block")
    body = _WHITESPACE.sub("", match.group(1))
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise FormatError("PEM public key: bad base64") from None
    if not der or base64.b64encode(der).decode("ascii") != body:
        raise FormatError("PEM public key: non-canonical or empty base64")
    return der


def read_tlv(data: bytes, offset: int, expected_tag: int):
    """Read one DER element at ``offset``: (content start, content end)."""
    end = len(data)
    if offset + 2 > end:
        raise FormatError("DER: truncated element")
    tag = data[offset]
    if tag != expected_tag:
        raise FormatError(f"DER: expected tag 0x{expected_tag:02x}, got 0x{tag:02x}")
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4:
            raise FormatError("DER: indefinite or oversized length")
        if start + count > end:
            raise FormatError("DER: truncated length")
        length_bytes = data[start : start + count]
        length = int.from_bytes(length_bytes, "big")
        if length_bytes[0] == 0 or length < 0x80:
            raise FormatError("DER: non-minimal length")
        start += count
    if start + length > end:
        raise FormatError("DER: truncated content")
    return start, start + length


def read_positive_integer(data: bytes, offset: int):
    """Read a DER INTEGER that must be positive: (value, next offset)."""
    start, stop = read_tlv(data, offset, INTEGER)
    content = data[start:stop]
    if not content:
        raise FormatError("DER: empty INTEGER")
    if content[0] & 0x80:
        raise FormatError("DER: negative INTEGER")
    if len(content) > 1 and content[0] == 0 and not content[1] & 0x80:
        raise FormatError("DER: non-minimal INTEGER")
    value = int.from_bytes(content, "big")
    if value == 0:
        raise FormatError("DER: INTEGER is zero")
    return value, stop


def read_ecdsa_signature(data: bytes):
    """(r, s) of a DER ECDSA-Sig-Value ``SEQUENCE { r INTEGER, s INTEGER }``."""
    start, stop = read_tlv(data, 0, SEQUENCE)
    if stop != len(data):
        raise FormatError("DER: trailing bytes after signature")
    r, offset = read_positive_integer(data, start)
    s, offset = read_positive_integer(data, offset)
    if offset != stop:
        raise FormatError("DER: trailing bytes inside signature")
    return r, s


def read_spki(der: bytes):
    """Split a SubjectPublicKeyInfo: (algorithm OID, parameters TLV, key bytes).

    ``parameters`` is the raw DER of the optional parameters element (b""
    when absent); ``key bytes`` is the BIT STRING content without its
    unused-bits byte, which must be zero.
    """
    start, stop = read_tlv(der, 0, SEQUENCE)
    if stop != len(der):
        raise FormatError("DER: trailing bytes after SubjectPublicKeyInfo")
    alg_start, alg_stop = read_tlv(der, start, SEQUENCE)
    oid_start, oid_stop = read_tlv(der, alg_start, OID)
    algorithm = der[oid_start:oid_stop]
    parameters = der[oid_stop:alg_stop]
    key_start, key_stop = read_tlv(der, alg_stop, BIT_STRING)
    if key_stop != stop:
        raise FormatError("DER: trailing bytes inside SubjectPublicKeyInfo")
    if key_start == key_stop or der[key_start] != 0:
        raise FormatError("DER: public key BIT STRING has unused bits")
    return algorithm, parameters, der[key_start + 1 : key_stop]


def read_oid_element(data: bytes) -> bytes:
    """The content of ``data`` when it is exactly one OBJECT IDENTIFIER."""
    start, stop = read_tlv(data, 0, OID)
    if stop != len(data):
        raise FormatError("DER: trailing bytes after OBJECT IDENTIFIER")
    return data[start:stop]


def read_rsa_public_key(data: bytes):
    """(n, e) of a DER ``RSAPublicKey ::= SEQUENCE { n INTEGER, e INTEGER }``."""
    start, stop = read_tlv(data, 0, SEQUENCE)
    if stop != len(data):
        raise FormatError("DER: trailing bytes after RSAPublicKey")
    n, offset = read_positive_integer(data, start)
    e, offset = read_positive_integer(data, offset)
    if offset != stop:
        raise FormatError("DER: trailing bytes inside RSAPublicKey")
    return n, e


def encode_length(length: int) -> bytes:
    if length < 0x80:
        return bytes([length])
    raw = length.to_bytes((length.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def encode_positive_integer(value: int) -> bytes:
    """Minimal DER INTEGER of a non-negative integer."""
    raw = value.to_bytes(value.bit_length() // 8 + 1, "big")
    return bytes([INTEGER]) + encode_length(len(raw)) + raw


def encode_sequence(*elements: bytes) -> bytes:
    content = b"".join(elements)
    return bytes([SEQUENCE]) + encode_length(len(content)) + content
