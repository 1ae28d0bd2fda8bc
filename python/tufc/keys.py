"""TUF public keys (:class:`Key`) and signature thresholds (:func:`verify_threshold`).

A :class:`Key` is the metadata view of a key (the dict under ``keys`` in root
and targets metadata).  Its key material is parsed by the core's
``PublicKey`` on first use and cached, so verifying many signatures parses
each PEM once.  A key of a type or scheme tufc does not support, or with
malformed material, still loads -- one exotic key must not make a whole root
unreadable -- but verifies nothing.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from typing import Any

from ._backend import PublicKey, verify_many
from .exceptions import FormatError, UnverifiedSignatureError, VerificationError

__all__ = ["Key", "ThresholdResult", "verify_threshold"]

_KNOWN_FIELDS = ("keytype", "scheme", "keyval")


class Key:
    """A TUF public key: ``keyid``, ``keytype``, ``scheme``, ``keyval``.

    ``keyval`` holds the key material as a ``str`` under ``"public"`` (a key
    without one, such as a Sigstore OIDC identity, loads but verifies
    nothing); other fields of the key dict are kept in ``unrecognized_fields`` so that
    ``to_dict`` (and so the canonical JSON that was signed) round-trips.
    The key id is given by the metadata, never recomputed.
    """

    __slots__ = (
        "keyid",
        "keytype",
        "scheme",
        "keyval",
        "unrecognized_fields",
        "_parsed",
        "_parsed_from",
    )

    def __init__(
        self,
        keyid: str,
        keytype: str,
        scheme: str,
        keyval: dict,
        unrecognized_fields: dict | None = None,
    ):
        if unrecognized_fields is None:
            unrecognized_fields = {}
        _check_fields(keyid, keytype, scheme, keyval, unrecognized_fields)
        self.keyid = keyid
        self.keytype = keytype
        self.scheme = scheme
        self.keyval = keyval
        self.unrecognized_fields = unrecognized_fields
        self._parsed: Any = None
        self._parsed_from: tuple | None = None

    @classmethod
    def from_dict(cls, keyid: str, key_dict: dict) -> Key:
        """The Key of a metadata key dict (not mutated); FormatError if malformed."""
        if not isinstance(key_dict, dict):
            raise FormatError(f"key {keyid!r}: expected a dict")
        missing = [f for f in _KNOWN_FIELDS if f not in key_dict]
        if missing:
            raise FormatError(f"key {keyid!r}: missing {', '.join(missing)}")
        keyval = key_dict["keyval"]
        if isinstance(keyval, dict):
            keyval = dict(keyval)
        unrecognized = {
            k: v for k, v in key_dict.items() if k not in _KNOWN_FIELDS
        }
        return cls(
            keyid, key_dict["keytype"], key_dict["scheme"], keyval, unrecognized
        )

    def to_dict(self) -> dict:
        """The metadata key dict: the inverse of :meth:`from_dict`."""
        return {
            "keytype": self.keytype,
            "scheme": self.scheme,
            "keyval": dict(self.keyval),
            **self.unrecognized_fields,
        }

    def _public_key(self):
        """The parsed core PublicKey, or None if unsupported or malformed.

        Parsed once and cached; the cache is keyed by the identity of the
        fields it was parsed from, so reassigning them re-parses.
        """
        keyval = self.keyval
        public = keyval.get("public") if isinstance(keyval, dict) else None
        src = self._parsed_from
        if (
            src is not None
            and src[0] is self.keytype
            and src[1] is self.scheme
            and src[2] is public
        ):
            return self._parsed
        try:
            parsed = PublicKey(self.keytype, self.scheme, public)
        except (FormatError, TypeError):
            parsed = None
        self._parsed = parsed
        self._parsed_from = (self.keytype, self.scheme, public)
        return parsed

    @property
    def supported(self) -> bool:
        """True if tufc knows this type and scheme and the material parsed."""
        return self._public_key() is not None

    @property
    def fingerprint(self) -> bytes | None:
        """Scheme-independent identity of the key material (None if unsupported)."""
        pk = self._public_key()
        return None if pk is None else pk.fingerprint

    def verify(self, signature: bytes, data: bytes) -> bool:
        """True if ``signature`` (raw bytes) is this key's signature of ``data``."""
        pk = self._public_key()
        if pk is None:
            memoryview(signature), memoryview(data)  # TypeError for non-bytes
            return False
        return pk.verify(signature, data)

    def verify_signature(self, signature: Any, data: bytes) -> None:
        """securesystemslib's ``Key.verify_signature``, which python-tuf's
        keys have: ``signature`` has ``keyid`` and hex ``signature``
        attributes (tufc's or securesystemslib's ``Signature``).  Returns
        None if it is this key's signature of ``data``; raises
        ``UnverifiedSignatureError`` if it is not, ``VerificationError`` if
        it cannot be checked (another key id, bad hex, unusable key)."""
        keyid = getattr(signature, "keyid", None)
        hex_sig = getattr(signature, "signature", None)
        if keyid != self.keyid:
            raise VerificationError(
                f"signature by key {keyid!r} checked with key {self.keyid!r}"
            )
        if not isinstance(hex_sig, str):
            raise VerificationError(f"signature by {self.keyid}: not a hex string")
        try:
            raw = binascii.unhexlify(hex_sig)
        except (binascii.Error, ValueError) as exc:
            raise VerificationError(f"signature by {self.keyid}: not hex") from exc
        pk = self._public_key()
        if pk is None:
            raise VerificationError(
                f"key {self.keyid}: unsupported or malformed {self.keytype}/{self.scheme} key"
            )
        if not pk.verify(raw, data):
            raise UnverifiedSignatureError(f"Failed to verify signature by {self.keyid}")

    def __reduce__(self):
        # copy, deepcopy and pickle rebuild from the fields: the cached core
        # key is neither copyable nor needed.
        return (
            type(self),
            (self.keyid, self.keytype, self.scheme, self.keyval, self.unrecognized_fields),
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Key):
            return NotImplemented
        return (
            self.keyid == other.keyid
            and self.keytype == other.keytype
            and self.scheme == other.scheme
            and self.keyval == other.keyval
            and self.unrecognized_fields == other.unrecognized_fields
        )

    def __hash__(self) -> int:
        keyval = self.keyval
        public = keyval.get("public") if isinstance(keyval, dict) else None
        return hash((self.keyid, self.keytype, self.scheme, public))

    def __repr__(self) -> str:
        return f"Key(keyid={self.keyid!r}, keytype={self.keytype!r}, scheme={self.scheme!r})"


def _check_fields(keyid, keytype, scheme, keyval, unrecognized_fields) -> None:
    for name, value in (("keyid", keyid), ("keytype", keytype), ("scheme", scheme)):
        if not isinstance(value, str):
            raise FormatError(f"key {name} must be a str, not {type(value).__name__}")
    if not isinstance(keyval, dict):
        raise FormatError(f"key {keyid!r}: keyval must be a dict")
    if "public" in keyval and not isinstance(keyval["public"], str):
        raise FormatError(f"key {keyid!r}: keyval 'public' must be a str")
    if not isinstance(unrecognized_fields, dict):
        raise FormatError(f"key {keyid!r}: unrecognized_fields must be a dict")
    if not all(isinstance(k, str) for k in keyval) or not all(
        isinstance(k, str) for k in unrecognized_fields
    ):
        raise FormatError(f"key {keyid!r}: field names must be str")


class ThresholdResult:
    """Outcome of :func:`verify_threshold`; true when the threshold is met.

    ``verified``: the key ids whose signature counted (one per distinct key).
    ``unsigned``: every other authorized key id.  The two are disjoint and
    together are the set of authorized key ids.
    """

    __slots__ = ("verified", "unsigned", "threshold")

    def __init__(self, verified: frozenset, unsigned: frozenset, threshold: int):
        self.verified = verified
        self.unsigned = unsigned
        self.threshold = threshold

    def __bool__(self) -> bool:
        return len(self.verified) >= self.threshold

    def __repr__(self) -> str:
        return (
            f"ThresholdResult(verified={sorted(self.verified)}, "
            f"unsigned={sorted(self.unsigned)}, threshold={self.threshold})"
        )


def verify_threshold(
    data: bytes,
    signatures: Mapping[str, str],
    keys: Mapping[str, Key],
    keyids: Iterable[str],
    threshold: int,
) -> ThresholdResult:
    """Check that ``threshold`` distinct authorized keys signed ``data``.

    ``signatures`` maps key id to hex signature; ``keys`` is the key table;
    ``keyids`` are the role's authorized key ids.  Each key id counts once,
    and key ids sharing the same key material count once together.  A key id
    missing from ``keys``, without a signature, with an unsupported key, or
    with a malformed or empty signature is unsigned.  All signatures are
    checked in one core call (the native core releases the GIL).
    """
    if type(threshold) is not int or threshold < 1:
        raise FormatError(f"threshold must be an int >= 1, not {threshold!r}")
    if not isinstance(signatures, Mapping) or not isinstance(keys, Mapping):
        raise FormatError("signatures and keys must be mappings")
    if isinstance(keyids, (str, bytes)) or not isinstance(keyids, Iterable):
        raise FormatError("keyids must be an iterable of key id strings")

    memoryview(data)  # TypeError unless bytes-like
    authorized: dict = {}
    for keyid in keyids:
        if not isinstance(keyid, str):
            raise FormatError(f"key ids must be str, not {type(keyid).__name__}")
        authorized[keyid] = None

    candidates = []
    pairs = []
    for keyid in authorized:
        key = keys.get(keyid)
        if key is None:
            continue
        if not isinstance(key, Key):
            raise FormatError(f"keys[{keyid!r}] is not a Key")
        sig_hex = signatures.get(keyid)
        if not isinstance(sig_hex, str) or not sig_hex:
            continue
        try:
            sig = binascii.unhexlify(sig_hex)
        except (binascii.Error, ValueError):
            continue
        pk = key._public_key()
        if pk is None:
            continue
        candidates.append(keyid)
        pairs.append((pk, sig))

    counted: dict = {}  # fingerprint -> smallest verified key id
    if pairs:
        for keyid, (pk, _), ok in zip(candidates, pairs, verify_many(data, pairs)):
            if ok:
                fp = pk.fingerprint
                if fp not in counted or keyid < counted[fp]:
                    counted[fp] = keyid

    verified = frozenset(counted.values())
    return ThresholdResult(verified, frozenset(authorized) - verified, threshold)
