"""ECDSA verification on P-256 and P-384 (FIPS 186-4) in pure Python.

Gives OpenSSL 3's verdict (what the native core's EVP_DigestVerify does):
the signature must be strict DER with 0 < r, s < n (high S is accepted),
the hash is truncated to the bit length of n, and u1*G + u2*Q is computed
with both scalars interleaved in one pass (width-5 NAF, Jacobian
coordinates, affine tables) before x mod n is compared with r.
"""

from __future__ import annotations

import hashlib
import re

from ..exceptions import FormatError
from .naf import naf
from . import der


class Curve:
    """A short Weierstrass curve y^2 = x^3 - 3x + b over GF(p) of prime order n."""

    __slots__ = ("name", "p", "b", "n", "g", "size", "hash_name", "oid", "_g_table")

    def __init__(self, name, p, b, n, gx, gy, hash_name, oid):
        self.name = name
        self.p = p
        self.b = b
        self.n = n
        self.g = (gx, gy)
        self.size = (p.bit_length() + 7) // 8
        self.hash_name = hash_name
        self.oid = oid
        self._g_table = None

    def on_curve(self, x: int, y: int) -> bool:
        p = self.p
        return 0 <= x < p and 0 <= y < p and (y * y - (x * x * x - 3 * x + self.b)) % p == 0

    def g_table(self):
        if self._g_table is None:
            self._g_table = _odd_multiples(self, self.g)
        return self._g_table


P256 = Curve(
    "P-256",
    p=2**256 - 2**224 + 2**192 + 2**96 - 1,
    b=0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B,
    n=0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551,
    gx=0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    gy=0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
    hash_name="sha256",
    oid=der.OID_P256,
)

P384 = Curve(
    "P-384",
    p=2**384 - 2**128 - 2**96 + 2**32 - 1,
    b=0xB3312FA7E23EE7E4988E056BE3F82D19181D9C6EFE8141120314088F5013875AC656398D8A2ED19D2A85C8EDD3EC2AEF,
    n=0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973,
    gx=0xAA87CA22BE8B05378EB1C71EF320AD746E1D3B628BA79B9859F741E082542A385502F25DBF55296C3A545E3872760AB7,
    gy=0x3617DE4A96262C6F5D9E98BF9292DC29F8F41DBD289A147CE9DA3113B5F0B8C00A60B1CE1D7E819D7A431D7C90EA0E5F,
    hash_name="sha384",
    oid=der.OID_P384,
)

_CURVES_BY_OID = {P256.oid: P256, P384.oid: P384}
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


# --- group arithmetic (Jacobian: x = X/Z^2, y = Y/Z^3; Z = 0 is infinity) --


def _double(p, X, Y, Z):
    if Z == 0 or Y == 0:
        return 0, 1, 0
    delta = Z * Z % p
    gamma = Y * Y % p
    beta = X * gamma % p
    alpha = 3 * (X - delta) * (X + delta) % p
    X3 = (alpha * alpha - 8 * beta) % p
    Z3 = ((Y + Z) * (Y + Z) - gamma - delta) % p
    Y3 = (alpha * (4 * beta - X3) - 8 * gamma * gamma) % p
    return X3, Y3, Z3


def _add_affine(p, X1, Y1, Z1, x2, y2):
    """(X1:Y1:Z1) + (x2, y2), the second point affine and finite."""
    if Z1 == 0:
        return x2, y2, 1
    z1z1 = Z1 * Z1 % p
    u2 = x2 * z1z1 % p
    s2 = y2 * Z1 % p * z1z1 % p
    h = (u2 - X1) % p
    r = 2 * (s2 - Y1) % p
    if h == 0:
        if r == 0:
            return _double(p, x2, y2, 1)
        return 0, 1, 0
    hh = h * h % p
    i = 4 * hh % p
    j = h * i % p
    v = X1 * i % p
    X3 = (r * r - j - 2 * v) % p
    Y3 = (r * (v - X3) - 2 * Y1 * j) % p
    Z3 = ((Z1 + h) * (Z1 + h) - z1z1 - hh) % p
    return X3, Y3, Z3


def _to_affine(p, X, Y, Z):
    zi = pow(Z, -1, p)
    zi2 = zi * zi % p
    return X * zi2 % p, Y * zi2 % p * zi % p


def _odd_multiples(curve, point):
    """{d: d*point} for odd d in [-15, 15], affine: the width-5 NAF table."""
    p = curve.p
    x, y = point
    twice = _to_affine(p, *_double(p, x, y, 1))
    table = {1: (x, y)}
    current = (x, y, 1)
    for d in range(3, 16, 2):
        current = _add_affine(p, *current, *twice)
        table[d] = _to_affine(p, *current)
    for d in range(1, 16, 2):
        tx, ty = table[d]
        table[-d] = (tx, (-ty) % p)
    return table



def _double_scalarmult(curve, u1, table1, u2, table2):
    """u1*P1 + u2*P2 from their width-5 NAF tables: Jacobian or infinity."""
    p = curve.p
    naf1 = naf(u1)
    naf2 = naf(u2)
    length = max(len(naf1), len(naf2))
    naf1 += [0] * (length - len(naf1))
    naf2 += [0] * (length - len(naf2))
    X, Y, Z = 0, 1, 0
    for i in range(length - 1, -1, -1):
        X, Y, Z = _double(p, X, Y, Z)
        d1 = naf1[i]
        if d1:
            X, Y, Z = _add_affine(p, X, Y, Z, *table1[d1])
        d2 = naf2[i]
        if d2:
            X, Y, Z = _add_affine(p, X, Y, Z, *table2[d2])
    return X, Y, Z


# --- keys --------------------------------------------------------------------


def _decode_point(curve, encoded: bytes):
    """A SEC1 point (uncompressed 04 or compressed 02/03), validated."""
    size = curve.size
    p = curve.p
    if len(encoded) == 1 + 2 * size and encoded[0] == 4:
        x = int.from_bytes(encoded[1 : 1 + size], "big")
        y = int.from_bytes(encoded[1 + size :], "big")
    elif len(encoded) == 1 + size and encoded[0] in (2, 3):
        x = int.from_bytes(encoded[1:], "big")
        if x >= p:
            raise FormatError(f"{curve.name} point: x out of range")
        rhs = (x * x * x - 3 * x + curve.b) % p
        y = pow(rhs, (p + 1) // 4, p)  # p = 3 mod 4 for both curves
        if y * y % p != rhs:
            raise FormatError(f"{curve.name} point: x has no point on the curve")
        if (y & 1) != (encoded[0] & 1):
            y = (-y) % p
    else:
        raise FormatError(f"not a {curve.name} SEC1 point encoding")
    if not curve.on_curve(x, y):
        raise FormatError(f"{curve.name} point is not on the curve")
    return x, y


def _curve_of_point_length(length: int):
    for curve in (P256, P384):
        if length in (1 + curve.size, 1 + 2 * curve.size):
            return curve
    return None


class EcdsaPublicKey:
    """A validated ECDSA public key on the curve its scheme names."""

    __slots__ = ("curve", "point", "fingerprint", "_table")

    def __init__(self, curve: Curve, point):
        self.curve = curve
        self.point = point
        x, y = point
        size = curve.size
        self.fingerprint = (
            curve.name.encode("ascii") + b":\x04" + x.to_bytes(size, "big") + y.to_bytes(size, "big")
        )
        self._table = None

    @classmethod
    def from_string(cls, curve: Curve, public: str) -> "EcdsaPublicKey":
        """Parse a PEM SubjectPublicKeyInfo or a hex SEC1 point for ``curve``."""
        if public.lstrip(" \t\r\n").startswith("-----BEGIN"):
            return cls.from_der(curve, der.pem_to_der(public))
        if not _HEX.fullmatch(public):
            raise FormatError("an ECDSA public key must be PEM or a hex SEC1 point")
        encoded = bytes.fromhex(public)
        actual = _curve_of_point_length(len(encoded))
        if actual is None:
            raise FormatError("not a P-256 or P-384 SEC1 point encoding")
        if actual is not curve:
            raise FormatError(f"a {actual.name} point for a {curve.name} scheme")
        return cls(curve, _decode_point(curve, encoded))

    @classmethod
    def from_der(cls, curve: Curve, spki: bytes) -> "EcdsaPublicKey":
        algorithm, parameters, key = der.read_spki(spki)
        if algorithm != der.OID_EC_PUBLIC_KEY:
            raise FormatError("not an id-ecPublicKey SubjectPublicKeyInfo")
        if not parameters:
            raise FormatError("EC SubjectPublicKeyInfo without a named curve")
        actual = _CURVES_BY_OID.get(der.read_oid_element(parameters))
        if actual is None:
            raise FormatError("EC key on an unsupported curve")
        if actual is not curve:
            raise FormatError(f"a {actual.name} key for a {curve.name} scheme")
        return cls(curve, _decode_point(curve, key))

    def verify(self, signature: bytes, data: bytes) -> bool:
        """OpenSSL's ECDSA_verify verdict; False for any malformed signature."""
        curve = self.curve
        n = curve.n
        try:
            r, s = der.read_ecdsa_signature(signature)
        except FormatError:
            return False
        if not (0 < r < n and 0 < s < n):
            return False
        digest = hashlib.new(curve.hash_name, data).digest()
        e = int.from_bytes(digest, "big")
        excess = 8 * len(digest) - n.bit_length()
        if excess > 0:
            e >>= excess
        w = pow(s, -1, n)
        if self._table is None:
            self._table = _odd_multiples(curve, self.point)
        X, _, Z = _double_scalarmult(curve, e * w % n, curve.g_table(), r * w % n, self._table)
        if Z == 0:
            return False
        zi = pow(Z, -1, curve.p)
        return X * zi * zi % curve.p % n == r
