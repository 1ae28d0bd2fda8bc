"""Ed25519 (RFC 8032) in pure Python, verifying exactly as libsodium 1.0.18.

The native core verifies with libsodium's ``crypto_sign_verify_detached``,
so this twin reproduces its decisions, not only RFC 8032's:

* S must be canonical (S < L);
* R and the public key A must not be one of the small-order encodings in
  libsodium's blocklist (compared with the sign bit ignored);
* A must be a canonical encoding (y < p) of a point on the curve;
* the cofactorless equation: encode([S]B - [k]A) and compare the bytes with
  R, with k = SHA-512(R || A || M) reduced mod L.

Points use extended twisted Edwards coordinates (X : Y : Z : T), x = X/Z,
y = Y/Z, x*y = T/Z, on Python integers.  [S]B uses a table of multiples of
B built on first use; [k]A uses a width-5 NAF.
"""

from __future__ import annotations

import hashlib
import hmac

from ..exceptions import FormatError
from .naf import naf

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = (-121665 * pow(121666, -1, P)) % P
D2 = (2 * D) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

_BY = (4 * pow(5, -1, P)) % P
_BX = 15112221349535400772501151409588531511454012693041857206046113283949847762202

# libsodium's small-order blocklist: y coordinates (sign bit ignored) of the
# points of order 1, 2, 4 and 8, plus the non-canonical y = p and y = p + 1.
_SMALL_ORDER_Y = frozenset(
    int.from_bytes(bytes.fromhex(h), "little")
    for h in (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "0100000000000000000000000000000000000000000000000000000000000000",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    )
)

_Y_MASK = (1 << 255) - 1


# --- group arithmetic --------------------------------------------------------
# A "cached" point is (Y-X, Y+X, 2d*T, 2*Z): the form the addition formula
# (a = -1 twisted Edwards, "add-2008-hwcd-3") consumes.


def _cached(point):
    x, y, z, t = point
    return ((y - x) % P, (y + x) % P, (D2 * t) % P, (2 * z) % P)


def _add(point, cached):
    x1, y1, z1, t1 = point
    ymx2, ypx2, t2d2, z2x2 = cached
    a = (y1 - x1) * ymx2 % P
    b = (y1 + x1) * ypx2 % P
    c = t1 * t2d2 % P
    d = z1 * z2x2 % P
    e = b - a
    f = d - c
    g = d + c
    h = b + a
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _double(point):
    x1, y1, z1, _ = point
    a = x1 * x1 % P
    b = y1 * y1 % P
    c = 2 * z1 * z1 % P
    h = a + b
    s = x1 + y1
    e = h - s * s % P
    g = a - b
    f = c + g
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _negate_cached(cached):
    ymx, ypx, t2d, z2 = cached
    return (ypx, ymx, (-t2d) % P, z2)


_IDENTITY = (0, 1, 1, 0)
_B = (_BX, _BY, 1, (_BX * _BY) % P)


def encode_point(point) -> bytes:
    """The 32-byte canonical encoding of a point: y, with x's parity on top."""
    x, y, z, _ = point
    zi = pow(z, -1, P)
    x = x * zi % P
    y = y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


def _decode_point(encoded: bytes):
    """Decode as libsodium's frombytes does (caller checked canonical y).

    Returns None when y is not the y-coordinate of a curve point.
    """
    value = int.from_bytes(encoded, "little")
    y = value & _Y_MASK
    sign = value >> 255
    y2 = y * y % P
    u = (y2 - 1) % P
    v = (D * y2 + 1) % P
    v3 = v * v % P * v % P
    x = u * v3 % P * pow(u * v3 % P * v3 % P * v % P, (P - 5) // 8, P) % P
    vxx = v * x % P * x % P
    if vxx != u:
        if vxx != (-u) % P:
            return None
        x = x * SQRT_M1 % P
    if (x & 1) != sign:
        x = (-x) % P
    return (x, y, 1, x * y % P)



def _scalarmult(point, scalar: int):
    """[scalar]point for a variable point (width-5 NAF, public data only).

    The doubling and addition formulas are inlined: this loop is where
    verification spends most of its time.
    """
    if scalar == 0:
        return _IDENTITY
    odd = [_cached(point)]
    twice = _cached(_double(point))
    current = point
    for _ in range(7):
        current = _add(current, twice)
        odd.append(_cached(current))
    table = {}
    for i, entry in enumerate(odd):
        table[2 * i + 1] = entry
        table[-2 * i - 1] = _negate_cached(entry)
    digits = naf(scalar)
    top = digits.pop()
    x, y, z, t = point if top == 1 else _add(_IDENTITY, table[top])
    if not digits:
        return (x, y, z, t)
    for digit in reversed(digits):
        a = x * x % P
        b = y * y % P
        c = 2 * z * z % P
        h = a + b
        e = x + y
        e = h - e * e
        g = a - b
        f = c + g
        x = e * f % P
        y = g * h % P
        z = f * g % P
        if digit:
            t = e * h % P
            ymx2, ypx2, t2d2, z2x2 = table[digit]
            a = (y - x) * ymx2 % P
            b = (y + x) * ypx2 % P
            c = t * t2d2 % P
            d = z * z2x2 % P
            e = b - a
            f = d - c
            g = d + c
            h = b + a
            x = e * f % P
            y = g * h % P
            z = f * g % P
    t = e * h % P
    return (x, y, z, t)


# Fixed-base table: for window i (0..63), j*16^i*B for j = 1..8 in cached
# form with Z normalised to 1, consumed with signed radix-16 digits.
_BASE_TABLE = None


def _base_table():
    global _BASE_TABLE  # a cache of constants, computed once on first use
    if _BASE_TABLE is None:
        table = []
        window_base = _B
        for _ in range(64):
            row = []
            multiple = window_base
            step = _cached(window_base)
            for j in range(8):
                x, y, z, _ = multiple
                zi = pow(z, -1, P)
                ax, ay = x * zi % P, y * zi % P
                row.append(((ay - ax) % P, (ay + ax) % P, D2 * ax % P * ay % P, 2))
                if j < 7:
                    multiple = _add(multiple, step)
            table.append(row)
            for _ in range(4):
                window_base = _double(window_base)
        _BASE_TABLE = table
    return _BASE_TABLE


def _scalarmult_base(scalar: int):
    """[scalar]B for 0 <= scalar < 2^255, from the fixed-base table."""
    table = _base_table()
    digits = []
    carry = 0
    for _ in range(63):
        digit = (scalar & 15) + carry
        scalar >>= 4
        carry = (digit + 8) >> 4
        digits.append(digit - (carry << 4))
    digits.append(scalar + carry)  # top nibble <= 7, so at most 8
    acc = _IDENTITY
    for row, digit in zip(table, digits):
        if digit > 0:
            acc = _add(acc, row[digit - 1])
        elif digit < 0:
            acc = _add(acc, _negate_cached(row[-digit - 1]))
    return acc


# --- public API -----------------------------------------------------------


def _seed_bytes(seed) -> bytes:
    try:
        raw = bytes(memoryview(seed))
    except TypeError:
        raise TypeError(
            f"an Ed25519 seed must be bytes-like, not {type(seed).__name__}"
        ) from None
    if len(raw) != 32:
        raise FormatError(f"an Ed25519 seed must be 32 bytes, not {len(raw)}")
    return raw


def _expand(seed: bytes):
    digest = hashlib.sha512(seed).digest()
    a = int.from_bytes(digest[:32], "little")
    a &= (1 << 254) - 8
    a |= 1 << 254
    return a, digest[32:]


def ed25519_public_key(seed) -> bytes:
    """The 32-byte public key of a 32-byte seed (RFC 8032 section 5.1.5)."""
    a, _ = _expand(_seed_bytes(seed))
    return encode_point(_scalarmult_base(a))


def ed25519_sign(seed, message) -> bytes:
    """A deterministic RFC 8032 signature of ``message`` by ``seed``.

    Pure Python cannot run in constant time: the big-integer arithmetic
    here leaks timing that depends on the secret seed.  Use it for tests
    and occasional offline signing; servers should sign with the native
    core (libsodium).
    """
    a, prefix = _expand(_seed_bytes(seed))
    message = bytes(memoryview(message))
    public = encode_point(_scalarmult_base(a))
    r = int.from_bytes(hashlib.sha512(prefix + message).digest(), "little") % L
    big_r = encode_point(_scalarmult_base(r))
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    s = (r + k * a) % L
    return big_r + s.to_bytes(32, "little")


def _is_canonical_y(encoded: bytes) -> bool:
    return int.from_bytes(encoded, "little") & _Y_MASK < P


def _has_small_order(encoded: bytes) -> bool:
    return int.from_bytes(encoded, "little") & _Y_MASK in _SMALL_ORDER_Y


def public_key_point(public: bytes):
    """The decoded public key, or None when libsodium would refuse it."""
    if len(public) != 32 or not _is_canonical_y(public) or _has_small_order(public):
        return None
    return _decode_point(public)


def verify(point, public: bytes, signature: bytes, message: bytes) -> bool:
    """libsodium 1.0.18's crypto_sign_verify_detached verdict.

    ``point`` is ``public_key_point(public)`` (decoded once per key).
    """
    if point is None or len(signature) != 64:
        return False
    big_r = signature[:32]
    s = int.from_bytes(signature[32:], "little")
    if s >= L or _has_small_order(big_r):
        return False
    k = int.from_bytes(hashlib.sha512(big_r + public + message).digest(), "little") % L
    x, y, z, t = _scalarmult(point, k)
    minus_ka = ((-x) % P, y, z, (-t) % P)
    check = _add(minus_ka, _cached(_scalarmult_base(s)))
    return hmac.compare_digest(encode_point(check), big_r)
