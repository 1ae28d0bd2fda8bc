"""The TUF metadata model: parse, validate, serialize, sign.

Names mirror python-tuf's ``tuf.api.metadata`` so readers can switch.
Parsing is strict (every wrong type, missing field or bad value is a
``DeserializationError`` naming the field) and keeps unknown fields, so the
canonical bytes of ``signed`` reproduce exactly what the repository signed.
Those bytes come out of the same pass that parses the JSON
(``load_metadata`` of the active core) and are never recomputed for a parse.

Scale: snapshot ``meta`` and targets ``targets`` can hold tens of thousands
of entries. The loader validates every entry and keeps them in an
``EntryMap`` (no Python objects per entry); a ``MetaFile`` / ``TargetFile``
is built only for an entry that is looked up.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping, MutableMapping
from datetime import datetime, timedelta, timezone
from typing import IO, Any, ClassVar, Iterable, Union

from . import _atomic, _backend
from ._pure import loader as _pure_loader
from .exceptions import (
    DeserializationError,
    DownloadLengthMismatchError,
    FormatError,
    LengthOrHashMismatchError,
    StorageError,
    UnsignedMetadataError,
)
from .keys import Key, verify_threshold

__all__ = [
    "SPECIFICATION_VERSION",
    "TOP_LEVEL_ROLE_NAMES",
    "DelegatedRole",
    "Delegations",
    "Key",
    "MetaFile",
    "Metadata",
    "Role",
    "Root",
    "RootVerificationResult",
    "Signature",
    "Signed",
    "Snapshot",
    "SuccinctRoles",
    "TargetFile",
    "Targets",
    "Timestamp",
]

SPECIFICATION_VERSION = ["1", "0", "31"]
TOP_LEVEL_ROLE_NAMES = frozenset({"root", "timestamp", "snapshot", "targets"})

_CHUNK = 1 << 20
_HEX = re.compile(r"[0-9a-fA-F]+\Z")
_LOWER_HEX = re.compile(r"[0-9a-f]+\Z")  # hash bin suffixes, as get_roles() names them
# RFC 3339 date-time; "Z" is what the specification asks for, offsets and
# fractions occur in real repositories (Sigstore's first roots).
_DATETIME = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?"
    r"(?:([Zz])|([+-])(\d{2}):(\d{2}))\Z"
)
_SPEC_VERSION = re.compile(r"(\d+)\.(\d+)(?:\.(\d+))?\Z")

Data = Union[bytes, bytearray, memoryview, IO[bytes]]


# --- field validation --------------------------------------------------------


def _fail(where: str, what: str, value: Any) -> DeserializationError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return DeserializationError(f"{where}: {what}, got {shown}")


def _dict(value: Any, where: str) -> dict:
    if type(value) is not dict:
        raise _fail(where, "expected an object", value)
    return value


def _list(value: Any, where: str) -> list:
    if type(value) is not list:
        raise _fail(where, "expected an array", value)
    return value


def _str(value: Any, where: str) -> str:
    if type(value) is not str:
        raise _fail(where, "expected a string", value)
    return value


def _bool(value: Any, where: str) -> bool:
    if type(value) is not bool:
        raise _fail(where, "expected true or false", value)
    return value


def _int(value: Any, where: str, minimum: int) -> int:
    # type() rather than isinstance(): bool is an int subclass, and refused.
    if type(value) is not int or value < minimum:
        raise _fail(where, f"expected an integer >= {minimum}", value)
    return value


def _field(obj: dict, name: str, where: str) -> Any:
    try:
        return obj[name]
    except KeyError:
        raise DeserializationError(f"{where}: missing field {name!r}") from None


def _str_list(value: Any, where: str, unique: bool = False) -> list:
    for i, item in enumerate(_list(value, where)):
        _str(item, f"{where}[{i}]")
    if unique and len(set(value)) != len(value):
        raise _fail(where, "duplicate entries", value)
    return value


def _hashes(value: Any, where: str) -> dict:
    if type(value) is not dict or not value:
        raise _fail(where, "expected a non-empty object", value)
    for algo, digest in value.items():
        if type(digest) is not str or len(digest) % 2 or not _HEX.match(digest):
            raise _fail(f"{where}[{algo!r}]", "expected a hex digest", digest)
    return value


def _extra(obj: dict, known: frozenset) -> dict:
    """The fields of ``obj`` this model does not know (kept for signing)."""
    if len(obj) == len(known) and all(k in obj for k in known):
        return {}
    return {k: v for k, v in obj.items() if k not in known}


def _parse_expires(value: Any, where: str) -> datetime:
    if type(value) is str:  # every bin of a repository shares its expiry
        return _parse_expires_str(value, where)
    raise _fail(where, "expected an RFC 3339 date-time", value)


@functools.lru_cache(maxsize=64)
def _parse_expires_str(value: str, where: str) -> datetime:
    match = _DATETIME.match(value)
    if match is None:
        raise _fail(where, "expected an RFC 3339 date-time", value)
    year, month, day, hour, minute, second = (int(g) for g in match.group(1, 2, 3, 4, 5, 6))
    fraction = match.group(7)
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    if match.group(8):
        tz = timezone.utc
    else:
        hours, minutes = int(match.group(10)), int(match.group(11))
        if hours > 23 or minutes > 59:
            raise _fail(where, "bad UTC offset", value)
        offset = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-offset if match.group(9) == "-" else offset)
    try:
        when = datetime(year, month, day, hour, minute, second, micro, tzinfo=tz)
        return when.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise _fail(where, "not a valid date-time", value) from None


def _format_expires(when: datetime) -> str:
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _canonical(obj: Any) -> bytes:
    try:
        return _backend.canonical_json(obj)
    except FormatError as exc:
        raise DeserializationError(f"signed: cannot be canonicalized: {exc}") from exc


# --- signatures and thresholds -------------------------------------------------


class Signature:
    """One signature: ``keyid`` and ``signature`` (hex), plus unknown fields."""

    __slots__ = ("keyid", "signature", "unrecognized_fields")

    def __init__(self, keyid: str, sig: str, unrecognized_fields: dict | None = None):
        self.keyid = keyid
        self.signature = sig
        self.unrecognized_fields = unrecognized_fields or {}

    @classmethod
    def from_dict(cls, obj: Any, where: str = "signatures[]") -> Signature:
        _dict(obj, where)
        keyid = _str(_field(obj, "keyid", where), f"{where}.keyid")
        sig = _str(_field(obj, "sig", where), f"{where}.sig")
        return cls(keyid, sig, _extra(obj, _SIG_FIELDS))

    def to_dict(self) -> dict:
        return {"keyid": self.keyid, "sig": self.signature, **self.unrecognized_fields}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Signature) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Signature(keyid={self.keyid!r})"


_SIG_FIELDS = frozenset({"keyid", "sig"})


def _sig_map(signatures: Mapping[str, Any]) -> dict:
    """keyid -> hex signature, from Signature objects or plain strings."""
    return {
        keyid: getattr(sig, "signature", sig) for keyid, sig in signatures.items()
    }


def _check_threshold(result: Any, role_name: str, threshold: int) -> None:
    if not result:
        raise UnsignedMetadataError(
            f"{role_name} was signed by {len(result.verified)}/{threshold} keys"
        )


# --- roles and keys ------------------------------------------------------------


class Role:
    """The keys trusted for a role and how many of them must sign."""

    _FIELDS: ClassVar[frozenset] = frozenset({"keyids", "threshold"})

    def __init__(self, keyids: list[str], threshold: int, unrecognized_fields: dict | None = None):
        if len(set(keyids)) != len(keyids):
            raise ValueError(f"duplicate keyids in {keyids}")
        if type(threshold) is not int or threshold < 1:
            raise ValueError("threshold must be an integer >= 1")
        self.keyids = keyids
        self.threshold = threshold
        self.unrecognized_fields = unrecognized_fields or {}

    @classmethod
    def _parse_common(cls, obj: dict, where: str) -> tuple[list, int]:
        keyids = _str_list(_field(obj, "keyids", where), f"{where}.keyids", unique=True)
        threshold = _int(_field(obj, "threshold", where), f"{where}.threshold", 1)
        return list(keyids), threshold

    @classmethod
    def from_dict(cls, obj: Any, where: str = "role") -> Role:
        _dict(obj, where)
        keyids, threshold = cls._parse_common(obj, where)
        return cls(keyids, threshold, _extra(obj, cls._FIELDS))

    def to_dict(self) -> dict:
        return {"keyids": list(self.keyids), "threshold": self.threshold, **self.unrecognized_fields}

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"


def _parse_keys(obj: Any, where: str) -> dict[str, Key]:
    keys = {}
    for keyid, key_dict in _dict(obj, where).items():
        _dict(key_dict, f"{where}[{keyid!r}]")
        try:
            keys[keyid] = Key.from_dict(keyid, key_dict)
        except FormatError as exc:
            raise DeserializationError(f"{where}[{keyid!r}]: {exc}") from exc
    return keys


class _Delegator:
    """Shared by Root and Targets: verifying the roles they delegate to."""

    def get_delegated_role(self, delegated_role: str) -> Role:  # pragma: no cover
        raise NotImplementedError

    def get_key(self, keyid: str) -> Key:  # pragma: no cover
        raise NotImplementedError

    def _delegation_keys(self) -> Mapping[str, Key]:  # pragma: no cover
        raise NotImplementedError

    def get_verification_result(
        self,
        delegated_role: str,
        payload: bytes | Metadata,
        signatures: Mapping[str, Any] | None = None,
    ) -> Any:
        """Which keys of ``delegated_role`` signed ``payload`` (no raising).

        ``payload`` is the signed bytes with ``signatures`` (keyid ->
        Signature or hex), or a ``Metadata`` (its ``signed_bytes`` are reused).
        The result is true when the threshold is met.
        """
        return self._verify_role(self.get_delegated_role(delegated_role), payload, signatures)

    def _verify_role(
        self, role: Role, payload: bytes | Metadata, signatures: Mapping[str, Any] | None
    ) -> Any:
        if isinstance(payload, Metadata):
            signatures = payload.signatures
            payload = payload._signed_payload()
        elif type(payload) is not bytes:
            payload = bytes(payload)
        return verify_threshold(
            payload,
            _sig_map(signatures or {}),
            self._delegation_keys(),
            role.keyids,
            role.threshold,
        )

    def verify_delegate(
        self,
        delegated_role: str,
        payload: bytes | Metadata,
        signatures: Mapping[str, Any] | None = None,
    ) -> None:
        """Raise ``UnsignedMetadataError`` unless a threshold of the keys
        trusted for ``delegated_role`` signed ``payload``."""
        role = self.get_delegated_role(delegated_role)
        result = self._verify_role(role, payload, signatures)
        _check_threshold(result, delegated_role, role.threshold)


# --- Signed and the four role types -------------------------------------------


class Signed:
    """What every role's ``signed`` part has: type, versions, expiry."""

    type: ClassVar[str] = "signed"
    _FIELDS: ClassVar[frozenset] = frozenset({"_type", "version", "spec_version", "expires"})

    def __init__(
        self,
        version: int | None = None,
        spec_version: str | None = None,
        expires: datetime | None = None,
        unrecognized_fields: dict | None = None,
    ):
        if version is None:
            version = 1
        if type(version) is not int or version < 1:
            raise ValueError("version must be an integer >= 1")
        self.version = version
        self.spec_version = spec_version or ".".join(SPECIFICATION_VERSION)
        self.expires = expires or datetime.now(timezone.utc).replace(microsecond=0) + timedelta(days=1)
        self.unrecognized_fields = unrecognized_fields or {}

    # The parsed "expires" string is re-emitted as is, so canonical bytes of a
    # parsed role match what was signed even in non-"Z" forms.
    @property
    def expires(self) -> datetime:
        return self._expires

    @expires.setter
    def expires(self, value: datetime) -> None:
        if not isinstance(value, datetime) or value.tzinfo is None:
            raise ValueError("expires must be a timezone-aware datetime")
        self._expires = value.astimezone(timezone.utc).replace(microsecond=0)
        self._expires_str = _format_expires(self._expires)

    def is_expired(self, reference_time: datetime | None = None) -> bool:
        """True when ``reference_time`` (default: now) is at or past expiry."""
        if reference_time is None:
            reference_time = datetime.now(timezone.utc)
        return reference_time >= self._expires

    @classmethod
    def _parse_common(cls, obj: dict) -> Signed:
        """Make an instance with the common fields set (no __init__)."""
        where = cls.type
        kind = _field(obj, "_type", where)
        if kind != cls.type:
            raise _fail(f"{where}._type", f"expected {cls.type!r}", kind)
        self = cls.__new__(cls)
        self.version = _int(_field(obj, "version", where), f"{where}.version", 1)
        spec = _str(_field(obj, "spec_version", where), f"{where}.spec_version")
        match = _SPEC_VERSION.match(spec)
        if match is None or match.group(1) != SPECIFICATION_VERSION[0]:
            raise _fail(f"{where}.spec_version", "expected a 1.x version", spec)
        self.spec_version = spec
        expires_str = _field(obj, "expires", where)
        self._expires = _parse_expires(expires_str, f"{where}.expires")
        self._expires_str = expires_str
        return self

    def _common_to_dict(self) -> dict:
        return {
            "_type": self.type,
            "version": self.version,
            "spec_version": self.spec_version,
            "expires": self._expires_str,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> Signed:
        """Parse a ``signed`` object of this role type (input not modified)."""
        _dict(obj, cls.type)
        return cls._from_dict(obj)

    @classmethod
    def _from_dict(cls, obj: dict) -> Signed:  # pragma: no cover
        raise NotImplementedError

    def to_dict(self) -> dict:  # pragma: no cover
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(version={self.version})"


class Root(Signed, _Delegator):
    """The root role: every top-level role's keys and thresholds."""

    type = "root"
    _FIELDS = Signed._FIELDS | {"keys", "roles", "consistent_snapshot"}

    def __init__(
        self,
        version: int | None = None,
        spec_version: str | None = None,
        expires: datetime | None = None,
        keys: dict[str, Key] | None = None,
        roles: dict[str, Role] | None = None,
        consistent_snapshot: bool | None = True,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(version, spec_version, expires, unrecognized_fields)
        self.keys = keys if keys is not None else {}
        if roles is None:
            roles = {name: Role([], 1) for name in sorted(TOP_LEVEL_ROLE_NAMES)}
        if set(roles) != TOP_LEVEL_ROLE_NAMES:
            raise ValueError("roles must be exactly the top-level roles")
        self.roles = roles
        self.consistent_snapshot = consistent_snapshot

    @classmethod
    def _from_dict(cls, obj: dict) -> Root:
        self = cls._parse_common(obj)
        self.keys = _parse_keys(_field(obj, "keys", "root"), "root.keys")
        roles = _dict(_field(obj, "roles", "root"), "root.roles")
        if set(roles) != TOP_LEVEL_ROLE_NAMES:
            raise _fail("root.roles", "expected exactly root, timestamp, snapshot, targets", sorted(roles))
        self.roles = {name: Role.from_dict(r, f"root.roles[{name!r}]") for name, r in roles.items()}
        consistent = obj.get("consistent_snapshot")
        if "consistent_snapshot" in obj:  # optional, but if present a bool
            _bool(consistent, "root.consistent_snapshot")
        self.consistent_snapshot = consistent
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out = self._common_to_dict()
        out["keys"] = {keyid: key.to_dict() for keyid, key in self.keys.items()}
        out["roles"] = {name: role.to_dict() for name, role in self.roles.items()}
        if self.consistent_snapshot is not None:
            out["consistent_snapshot"] = self.consistent_snapshot
        out.update(self.unrecognized_fields)
        return out

    def get_delegated_role(self, delegated_role: str) -> Role:
        try:
            return self.roles[delegated_role]
        except KeyError:
            raise ValueError(f"root does not delegate to {delegated_role!r}") from None

    def get_key(self, keyid: str) -> Key:
        try:
            return self.keys[keyid]
        except KeyError:
            raise ValueError(f"root has no key {keyid!r}") from None

    def _delegation_keys(self) -> Mapping[str, Key]:
        return self.keys

    def get_root_verification_result(
        self,
        previous: Root | None,
        payload: bytes | Metadata,
        signatures: Mapping[str, Any] | None = None,
    ) -> RootVerificationResult:
        """Both thresholds a new root needs: ``previous``'s root keys (the
        root before this one; None for a first root) and its own."""
        if previous is None:
            previous = self
        elif self.version != previous.version + 1:
            raise ValueError(
                f"expected sequential root versions, got v{previous.version} and v{self.version}"
            )
        return RootVerificationResult(
            previous.get_verification_result("root", payload, signatures),
            self.get_verification_result("root", payload, signatures),
        )

    def add_key(self, key: Key, role: str) -> None:
        """Trust ``key`` for the top-level ``role`` (server side)."""
        keyids = self.get_delegated_role(role).keyids
        if key.keyid not in keyids:
            keyids.append(key.keyid)
        self.keys[key.keyid] = key

    def revoke_key(self, keyid: str, role: str) -> None:
        """Stop trusting ``keyid`` for ``role``; drop the key if now unused."""
        keyids = self.get_delegated_role(role).keyids
        if keyid not in keyids:
            raise ValueError(f"key {keyid} is not used by {role}")
        keyids.remove(keyid)
        if not any(keyid in r.keyids for r in self.roles.values()):
            del self.keys[keyid]


class RootVerificationResult:
    """The two threshold results a new root needs (python-tuf's name).

    True when both are met; ``first`` is the previous root's, ``second`` the
    new root's own.
    """

    __slots__ = ("first", "second")

    def __init__(self, first: Any, second: Any):
        self.first = first
        self.second = second

    @property
    def verified(self) -> bool:
        return bool(self.first) and bool(self.second)

    def __bool__(self) -> bool:
        return self.verified

    @property
    def signed(self) -> frozenset:
        """Key ids that signed, by either result."""
        return self.first.verified | self.second.verified

    @property
    def unsigned(self) -> frozenset:
        """Key ids, of either root, that did not sign."""
        return (self.first.unsigned | self.second.unsigned) - self.signed

    def __repr__(self) -> str:
        return f"RootVerificationResult({self.first!r}, {self.second!r})"


class MetaFile:
    """A metadata file's version and, optionally, its length and hashes."""

    _FIELDS: ClassVar[frozenset] = frozenset({"version", "length", "hashes"})

    def __init__(
        self,
        version: int = 1,
        length: int | None = None,
        hashes: dict[str, str] | None = None,
        unrecognized_fields: dict | None = None,
    ):
        if type(version) is not int or version < 1:
            raise ValueError("version must be an integer >= 1")
        if length is not None and (type(length) is not int or length < 0):
            raise ValueError("length must be an integer >= 0")
        if hashes is not None and not hashes:
            raise ValueError("hashes must not be empty")
        self.version = version
        self.length = length
        self.hashes = hashes
        self.unrecognized_fields = unrecognized_fields or {}

    @staticmethod
    def _validate(obj: Any, where: str) -> dict:
        """Check a parsed entry in place; fast for the common {"version": n}."""
        if type(obj) is not dict:
            raise _fail(where, "expected an object", obj)
        version = obj.get("version")
        if type(version) is not int or version < 1:
            if "version" not in obj:
                raise DeserializationError(f"{where}: missing field 'version'")
            raise _fail(f"{where}.version", "expected an integer >= 1", version)
        if len(obj) > 1:
            if "length" in obj:
                _int(obj["length"], f"{where}.length", 0)
            if "hashes" in obj:
                _hashes(obj["hashes"], f"{where}.hashes")
        return obj

    @classmethod
    def _from_valid(cls, obj: dict) -> MetaFile:
        self = cls.__new__(cls)
        self.version = obj["version"]
        self.length = obj.get("length")
        hashes = obj.get("hashes")
        self.hashes = dict(hashes) if hashes is not None else None
        self.unrecognized_fields = _extra(obj, cls._FIELDS) if len(obj) > 1 else {}
        return self

    @classmethod
    def from_dict(cls, obj: Any, where: str = "meta") -> MetaFile:
        return cls._from_valid(cls._validate(obj, where))

    @classmethod
    def from_data(cls, version: int, data: bytes | IO[bytes], hash_algorithms: list[str]) -> MetaFile:
        """A MetaFile describing ``data`` (server side)."""
        length, hashes = _length_and_hashes(data, hash_algorithms)
        return cls(version, length, hashes)

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"version": self.version}
        if self.length is not None:
            out["length"] = self.length
        if self.hashes is not None:
            out["hashes"] = dict(self.hashes)
        out.update(self.unrecognized_fields)
        return out

    def verify_length_and_hashes(self, data: Data) -> None:
        """Raise ``LengthOrHashMismatchError`` unless ``data`` matches."""
        _verify_length_and_hashes(data, self.length, self.hashes)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MetaFile) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"MetaFile({self.to_dict()!r})"


def _length_and_hashes(data: bytes | IO[bytes], algorithms: Iterable[str]) -> tuple[int, dict]:
    hasher = _backend.Hasher(list(algorithms))
    if isinstance(data, (bytes, bytearray, memoryview)):
        hasher.update(data)
    else:
        for chunk in iter(lambda: data.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.length, hasher.hexdigests()


def _verify_length_and_hashes(data: Data, length: int | None, hashes: Mapping[str, str] | None) -> None:
    if length is None and not hashes:
        return
    if isinstance(data, memoryview):
        data = data.cast("B")  # count bytes, not items
    if hashes:
        try:
            hasher = _backend.Hasher(list(hashes), None if length is None else length)
        except FormatError as exc:  # unknown algorithm: fail closed
            raise LengthOrHashMismatchError(f"cannot check hashes: {exc}") from exc
    else:
        hasher = None
    seen = 0
    try:
        if isinstance(data, (bytes, bytearray, memoryview)):
            chunks: Iterable = (data,)
        else:
            chunks = iter(lambda: data.read(_CHUNK), b"")
        for chunk in chunks:
            seen += len(chunk)
            if length is not None and seen > length:
                raise LengthOrHashMismatchError(f"data is longer than the expected {length} bytes")
            if hasher is not None:
                hasher.update(chunk)
    except DownloadLengthMismatchError as exc:
        raise LengthOrHashMismatchError(str(exc)) from exc
    if hasher is None:
        if seen != length:
            raise LengthOrHashMismatchError(f"expected length {length}, got {seen}")
        return
    hasher.verify(seen if length is None else length, hashes)


# What an entry map's raw entries can be: the loader's maps (either core) or,
# once edited or built by hand, a plain dict of parsed entries.
_ENTRY_MAPS = (_backend.EntryMap, _pure_loader.EntryMap)


class _LazyEntries(MutableMapping):
    """name -> model object, built from the entry's parsed dict on access.

    The raw entries are an ``EntryMap`` (as loaded, validated) or a dict.
    Objects set or built are cached and serialized from the object, so edits
    to a looked-up entry show in ``to_dict()``.
    """

    __slots__ = ("_raw", "_built", "_make")

    def __init__(self, raw, make):
        self._raw = raw
        self._built: dict = {}
        self._make = make

    def __getitem__(self, name: str):
        obj = self._built.get(name)
        if obj is None:
            obj = self._make(self._raw[name], name)
            self._built[name] = obj
        return obj

    def get(self, name: str, default: Any = None) -> Any:
        # Mapping.get would go through __getitem__ and a KeyError for every
        # miss (a lookup asks each role on the search path)
        obj = self._built.get(name)
        if obj is None:
            raw = self._raw.get(name)
            if raw is None:
                return default
            obj = self._make(raw, name)
            self._built[name] = obj
        return obj

    def __contains__(self, name: object) -> bool:
        return name in self._raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def _own(self) -> dict:
        """The raw entries as a dict this object may change."""
        if type(self._raw) is not dict:
            self._raw = self._raw.to_dict()
        return self._raw

    def __setitem__(self, name: str, obj) -> None:
        self._own()[name] = None  # placeholder keeps the order
        self._built[name] = obj

    def __delitem__(self, name: str) -> None:
        del self._own()[name]
        self._built.pop(name, None)

    def version(self, name: str) -> int | None:
        """An entry's "version" without building a MetaFile (None if absent)."""
        obj = self._built.get(name)
        if obj is not None:
            return obj.version
        raw = self._raw
        if type(raw) is dict:
            entry = raw.get(name)
            return None if entry is None else entry["version"]
        return raw.version(name)

    def rolled_back(self, newer: _LazyEntries) -> str | None:
        """The first name whose entry is missing from ``newer`` or has a lower
        version there; None when every version held or went up."""
        mine, theirs = self._raw, newer._raw
        if type(mine) is type(theirs) and isinstance(mine, _ENTRY_MAPS):
            return mine.rolled_back(theirs)  # in one pass, no objects built
        for name in self:
            now = newer.version(name)
            if now is None or now < self.version(name):
                return name
        return None

    def to_dict(self) -> dict:
        raw = self._raw
        built = self._built
        if not built:
            return raw.to_dict() if type(raw) is not dict else dict(raw)
        return {
            name: (built[name].to_dict() if name in built else raw[name])
            for name in raw
        }

    def __repr__(self) -> str:
        return f"<{len(self)} entries>"


class Timestamp(Signed):
    """The timestamp role: the current snapshot's version (and hashes)."""

    type = "timestamp"
    _FIELDS = Signed._FIELDS | {"meta"}

    def __init__(
        self,
        version: int | None = None,
        spec_version: str | None = None,
        expires: datetime | None = None,
        snapshot_meta: MetaFile | None = None,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(version, spec_version, expires, unrecognized_fields)
        self.snapshot_meta = snapshot_meta or MetaFile(1)

    @classmethod
    def _from_dict(cls, obj: dict) -> Timestamp:
        self = cls._parse_common(obj)
        meta = _dict(_field(obj, "meta", "timestamp"), "timestamp.meta")
        if list(meta) != ["snapshot.json"]:
            raise _fail("timestamp.meta", "expected exactly 'snapshot.json'", list(meta))
        self.snapshot_meta = MetaFile.from_dict(meta["snapshot.json"], "timestamp.meta['snapshot.json']")
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out = self._common_to_dict()
        out["meta"] = {"snapshot.json": self.snapshot_meta.to_dict()}
        out.update(self.unrecognized_fields)
        return out


class Snapshot(Signed):
    """The snapshot role: the version of every targets metadata file.

    ``meta`` maps "ROLE.json" to ``MetaFile``, built lazily on lookup.
    """

    type = "snapshot"
    _FIELDS = Signed._FIELDS | {"meta"}

    def __init__(
        self,
        version: int | None = None,
        spec_version: str | None = None,
        expires: datetime | None = None,
        meta: dict[str, MetaFile] | None = None,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(version, spec_version, expires, unrecognized_fields)
        self._meta = _LazyEntries({}, _make_metafile)
        for name, metafile in (meta if meta is not None else {"targets.json": MetaFile(1)}).items():
            self._meta[name] = metafile

    @property
    def meta(self) -> _LazyEntries:
        return self._meta

    @meta.setter
    def meta(self, value: Mapping[str, MetaFile]) -> None:
        self._meta = _LazyEntries({}, _make_metafile)
        for name, metafile in value.items():
            self._meta[name] = metafile

    def meta_version(self, name: str) -> int | None:
        """Version of "ROLE.json" without building a MetaFile (None if absent)."""
        return self._meta.version(name)

    @classmethod
    def _from_dict(cls, obj: dict) -> Snapshot:
        self = cls._parse_common(obj)
        meta = _field(obj, "meta", "snapshot")
        if not isinstance(meta, _ENTRY_MAPS):  # a dict from from_dict()
            meta = _entry_map(_dict(meta, "snapshot.meta"), "m")
        self._meta = _LazyEntries(meta, _make_metafile)
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out = self._common_to_dict()
        out["meta"] = self._meta.to_dict()
        out.update(self.unrecognized_fields)
        return out


def _entry_map(entries: dict, kind: str):
    """Validate a parsed entry map as the loader does (same messages)."""
    try:
        return _pure_loader.EntryMap(entries, kind)
    except FormatError as exc:
        raise DeserializationError(str(exc)) from None


def _make_metafile(raw: dict, name: str) -> MetaFile:
    return MetaFile._from_valid(raw)


class TargetFile:
    """A target: its path, length, hashes and optional custom data."""

    _FIELDS: ClassVar[frozenset] = frozenset({"length", "hashes"})

    def __init__(
        self,
        length: int,
        hashes: dict[str, str],
        path: str,
        unrecognized_fields: dict | None = None,
    ):
        if type(length) is not int or length < 0:
            raise ValueError("length must be an integer >= 0")
        if not hashes:
            raise ValueError("hashes must not be empty")
        self.length = length
        self.hashes = hashes
        self.path = path
        self.unrecognized_fields = unrecognized_fields or {}

    @property
    def custom(self) -> Any:
        """The "custom" field, or None."""
        return self.unrecognized_fields.get("custom")

    @staticmethod
    def _validate(obj: Any, where: str) -> dict:
        _dict(obj, where)
        _int(_field(obj, "length", where), f"{where}.length", 0)
        _hashes(_field(obj, "hashes", where), f"{where}.hashes")
        return obj

    @classmethod
    def from_dict(cls, obj: Any, path: str) -> TargetFile:
        cls._validate(obj, f"targets[{path!r}]")
        return cls._from_valid(obj, path)

    @classmethod
    def _from_valid(cls, obj: dict, path: str) -> TargetFile:
        self = cls.__new__(cls)
        self.length = obj["length"]
        self.hashes = dict(obj["hashes"])
        self.path = path
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    @classmethod
    def from_data(cls, target_file_path: str, data: bytes | IO[bytes], hash_algorithms: list[str] | None = None) -> TargetFile:
        """A TargetFile describing ``data`` (server side; default sha256)."""
        length, hashes = _length_and_hashes(data, hash_algorithms or ["sha256"])
        return cls(length, hashes, target_file_path)

    @classmethod
    def from_file(cls, target_file_path: str, local_path: str, hash_algorithms: list[str] | None = None) -> TargetFile:
        """A TargetFile describing the file at ``local_path`` (server side)."""
        with open(local_path, "rb") as f:
            return cls.from_data(target_file_path, f, hash_algorithms)

    def to_dict(self) -> dict:
        return {"length": self.length, "hashes": dict(self.hashes), **self.unrecognized_fields}

    def verify_length_and_hashes(self, data: Data) -> None:
        """Raise ``LengthOrHashMismatchError`` unless ``data`` matches."""
        _verify_length_and_hashes(data, self.length, self.hashes)

    def get_prefixed_paths(self) -> list[str]:
        """The hash-prefixed paths of this target, one per listed hash."""
        dirname, sep, basename = self.path.rpartition("/")
        return [f"{dirname}{sep}{digest}.{basename}" for digest in self.hashes.values()]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TargetFile) and self.path == other.path and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"TargetFile(path={self.path!r}, length={self.length})"


def _make_targetfile(raw: dict, path: str) -> TargetFile:
    return TargetFile._from_valid(raw, path)


class DelegatedRole(Role):
    """A delegation to a targets role, scoped by paths or hash prefixes."""

    _FIELDS = Role._FIELDS | {"name", "terminating", "paths", "path_hash_prefixes"}

    def __init__(
        self,
        name: str,
        keyids: list[str],
        threshold: int,
        terminating: bool,
        paths: list[str] | None = None,
        path_hash_prefixes: list[str] | None = None,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(keyids, threshold, unrecognized_fields)
        if paths is not None and path_hash_prefixes is not None:
            raise ValueError("only one of paths and path_hash_prefixes may be set")
        self.name = name
        self.terminating = terminating
        self.paths = paths
        self.path_hash_prefixes = path_hash_prefixes

    @classmethod
    def from_dict(cls, obj: Any, where: str = "delegations.roles[]") -> DelegatedRole:
        _dict(obj, where)
        name = _str(_field(obj, "name", where), f"{where}.name")
        keyids, threshold = cls._parse_common(obj, where)
        terminating = _bool(_field(obj, "terminating", where), f"{where}.terminating")
        paths = obj.get("paths")
        prefixes = obj.get("path_hash_prefixes")
        if "paths" in obj and "path_hash_prefixes" in obj:
            raise DeserializationError(f"{where}: both paths and path_hash_prefixes are set")
        if "paths" in obj:
            _str_list(paths, f"{where}.paths")
        if "path_hash_prefixes" in obj:
            _str_list(prefixes, f"{where}.path_hash_prefixes")
        self = cls.__new__(cls)
        self.name, self.keyids, self.threshold = name, keyids, threshold
        self.terminating = terminating
        self.paths = None if paths is None else list(paths)
        self.path_hash_prefixes = None if prefixes is None else list(prefixes)
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out = {"name": self.name, "keyids": list(self.keyids), "threshold": self.threshold, "terminating": self.terminating}
        if self.paths is not None:
            out["paths"] = list(self.paths)
        if self.path_hash_prefixes is not None:
            out["path_hash_prefixes"] = list(self.path_hash_prefixes)
        out.update(self.unrecognized_fields)
        return out

    @staticmethod
    def _matches(path: str, pattern: str) -> bool:
        # "*" must not cross "/": match segment by segment.
        parts = path.split("/")
        pattern_parts = pattern.split("/")
        if len(parts) != len(pattern_parts):
            return False
        return all(fnmatch.fnmatchcase(p, q) for p, q in zip(parts, pattern_parts))

    def is_delegated_path(self, target_filepath: str) -> bool:
        """True when this delegation covers ``target_filepath``."""
        if self.paths is not None:
            return any(self._matches(target_filepath, pattern) for pattern in self.paths)
        if self.path_hash_prefixes is not None:
            digest = hashlib.sha256(target_filepath.encode("utf-8")).hexdigest()
            return any(digest.startswith(prefix) for prefix in self.path_hash_prefixes)
        return False


class SuccinctRoles(Role):
    """TAP 15 hash bins: 2**bit_length roles named PREFIX-HEX, one key set."""

    _FIELDS = Role._FIELDS | {"bit_length", "name_prefix"}

    def __init__(
        self,
        keyids: list[str],
        threshold: int,
        bit_length: int,
        name_prefix: str,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(keyids, threshold, unrecognized_fields)
        if type(bit_length) is not int or not 1 <= bit_length <= 32:
            raise ValueError("bit_length must be an integer in 1..32")
        if type(name_prefix) is not str:
            raise ValueError("name_prefix must be a string")
        self._set(bit_length, name_prefix)

    def _set(self, bit_length: int, name_prefix: str) -> None:
        self.bit_length = bit_length
        self.name_prefix = name_prefix
        self.number_of_bins = 1 << bit_length
        self.suffix_len = len(f"{self.number_of_bins - 1:x}")

    @classmethod
    def from_dict(cls, obj: Any, where: str = "delegations.succinct_roles") -> SuccinctRoles:
        _dict(obj, where)
        keyids, threshold = cls._parse_common(obj, where)
        bit_length = _field(obj, "bit_length", where)
        if type(bit_length) is not int or not 1 <= bit_length <= 32:
            raise _fail(f"{where}.bit_length", "expected an integer in 1..32", bit_length)
        prefix = _str(_field(obj, "name_prefix", where), f"{where}.name_prefix")
        self = cls.__new__(cls)
        self.keyids, self.threshold = keyids, threshold
        self._set(bit_length, prefix)
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        return {
            "keyids": list(self.keyids),
            "threshold": self.threshold,
            "bit_length": self.bit_length,
            "name_prefix": self.name_prefix,
            **self.unrecognized_fields,
        }

    def _name(self, index: int) -> str:
        return f"{self.name_prefix}-{index:0{self.suffix_len}x}"

    def get_role_for_target(self, target_filepath: str) -> str:
        """The bin that holds ``target_filepath``."""
        digest = hashlib.sha256(target_filepath.encode("utf-8")).digest()
        return self._name(int.from_bytes(digest[:4], "big") >> (32 - self.bit_length))

    def get_roles(self) -> Iterator[str]:
        """Every bin name, in order."""
        return (self._name(i) for i in range(self.number_of_bins))

    def is_delegated_role(self, role_name: str) -> bool:
        """True for exactly the names ``get_roles()`` yields."""
        prefix = self.name_prefix + "-"
        if not role_name.startswith(prefix):
            return False
        suffix = role_name[len(prefix):]
        if len(suffix) != self.suffix_len or _LOWER_HEX.match(suffix) is None:
            return False
        return int(suffix, 16) < self.number_of_bins


class Delegations:
    """A targets role's delegations: keys plus ``roles`` or ``succinct_roles``."""

    _FIELDS: ClassVar[frozenset] = frozenset({"keys", "roles", "succinct_roles"})

    def __init__(
        self,
        keys: dict[str, Key],
        roles: dict[str, DelegatedRole] | None = None,
        succinct_roles: SuccinctRoles | None = None,
        unrecognized_fields: dict | None = None,
    ):
        if (roles is None) == (succinct_roles is None):
            raise ValueError("exactly one of roles and succinct_roles must be set")
        for name in roles or {}:
            if not name or name in TOP_LEVEL_ROLE_NAMES:
                raise ValueError(f"bad delegated role name {name!r}")
        self.keys = keys
        self.roles = roles
        self.succinct_roles = succinct_roles
        self.unrecognized_fields = unrecognized_fields or {}

    @classmethod
    def from_dict(cls, obj: Any, where: str = "targets.delegations") -> Delegations:
        _dict(obj, where)
        keys = _parse_keys(_field(obj, "keys", where), f"{where}.keys")
        has_roles, has_succinct = "roles" in obj, "succinct_roles" in obj
        if has_roles == has_succinct:
            raise DeserializationError(f"{where}: exactly one of roles and succinct_roles must be set")
        roles = None
        succinct = None
        if has_roles:
            roles = {}
            for i, role_obj in enumerate(_list(obj["roles"], f"{where}.roles")):
                role = DelegatedRole.from_dict(role_obj, f"{where}.roles[{i}]")
                if not role.name or role.name in TOP_LEVEL_ROLE_NAMES:
                    raise _fail(f"{where}.roles[{i}].name", "reserved or empty role name", role.name)
                if role.name in roles:
                    raise _fail(f"{where}.roles[{i}].name", "duplicate role name", role.name)
                roles[role.name] = role
        else:
            succinct = SuccinctRoles.from_dict(obj["succinct_roles"], f"{where}.succinct_roles")
        self = cls.__new__(cls)
        self.keys, self.roles, self.succinct_roles = keys, roles, succinct
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out: dict[str, Any] = {"keys": {keyid: key.to_dict() for keyid, key in self.keys.items()}}
        if self.roles is not None:
            out["roles"] = [role.to_dict() for role in self.roles.values()]
        else:
            out["succinct_roles"] = self.succinct_roles.to_dict()
        out.update(self.unrecognized_fields)
        return out

    def get_roles_for_target(self, target_filepath: str) -> Iterator[tuple[str, bool]]:
        """(role name, terminating) of each delegation covering the path, in order."""
        if self.roles is not None:
            for role in self.roles.values():
                if role.is_delegated_path(target_filepath):
                    yield role.name, role.terminating
        else:
            yield self.succinct_roles.get_role_for_target(target_filepath), True

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Delegations) and self.to_dict() == other.to_dict()


class Targets(Signed, _Delegator):
    """A targets role: target files and delegations.

    ``targets`` maps path to ``TargetFile``, built lazily on lookup.
    """

    type = "targets"
    _FIELDS = Signed._FIELDS | {"targets", "delegations"}

    def __init__(
        self,
        version: int | None = None,
        spec_version: str | None = None,
        expires: datetime | None = None,
        targets: dict[str, TargetFile] | None = None,
        delegations: Delegations | None = None,
        unrecognized_fields: dict | None = None,
    ):
        super().__init__(version, spec_version, expires, unrecognized_fields)
        self.targets = targets or {}
        self.delegations = delegations

    @property
    def targets(self) -> _LazyEntries:
        return self._targets

    @targets.setter
    def targets(self, value: Mapping[str, TargetFile]) -> None:
        self._targets = _LazyEntries({}, _make_targetfile)
        for path, target in value.items():
            self._targets[path] = target

    @classmethod
    def _from_dict(cls, obj: dict) -> Targets:
        self = cls._parse_common(obj)
        targets = _field(obj, "targets", "targets")
        if not isinstance(targets, _ENTRY_MAPS):  # a dict from from_dict()
            targets = _entry_map(_dict(targets, "targets.targets"), "t")
        self._targets = _LazyEntries(targets, _make_targetfile)
        self.delegations = Delegations.from_dict(obj["delegations"]) if "delegations" in obj else None
        self.unrecognized_fields = _extra(obj, cls._FIELDS)
        return self

    def to_dict(self) -> dict:
        out = self._common_to_dict()
        out["targets"] = self._targets.to_dict()
        if self.delegations is not None:
            out["delegations"] = self.delegations.to_dict()
        out.update(self.unrecognized_fields)
        return out

    def get_delegated_role(self, delegated_role: str) -> Role:
        delegations = self.delegations
        if delegations is not None:
            if delegations.roles is not None:
                role = delegations.roles.get(delegated_role)
                if role is not None:
                    return role
            elif delegations.succinct_roles.is_delegated_role(delegated_role):
                return delegations.succinct_roles
        raise ValueError(f"{delegated_role!r} is not delegated by this role")

    def get_key(self, keyid: str) -> Key:
        if self.delegations is None or keyid not in self.delegations.keys:
            raise ValueError(f"no delegation key {keyid!r}")
        return self.delegations.keys[keyid]

    def _delegation_keys(self) -> Mapping[str, Key]:
        return self.delegations.keys if self.delegations is not None else {}

    def _delegated_keyids(self, role: str | None) -> list:
        """The key id list of delegated ``role``; with succinct bins, theirs
        (``role`` is then not needed).  ValueError if there is none."""
        delegations = self.delegations
        if delegations is None:
            raise ValueError(f"delegated role {role!r} does not exist: no delegations")
        if delegations.roles is None:
            return delegations.succinct_roles.keyids
        if role not in delegations.roles:
            raise ValueError(f"delegated role {role!r} does not exist")
        return delegations.roles[role].keyids

    def add_key(self, key: Key, role: str | None = None) -> None:
        """Trust ``key`` for delegated ``role`` (or the succinct bins)."""
        if isinstance(role, Key):
            raise ValueError("add_key(key, role): the key comes first")
        keyids = self._delegated_keyids(role)
        if key.keyid not in keyids:
            keyids.append(key.keyid)
        self.delegations.keys[key.keyid] = key

    def revoke_key(self, keyid: str, role: str | None = None) -> None:
        """Stop trusting ``keyid`` for delegated ``role`` (or the succinct
        bins); the key leaves the key table once no delegated role uses it."""
        keyids = self._delegated_keyids(role)
        if keyid not in keyids:
            raise ValueError(f"key {keyid} is not used by {role or 'the succinct roles'}")
        keyids.remove(keyid)
        roles = self.delegations.roles
        if roles is None or not any(keyid in r.keyids for r in roles.values()):
            self.delegations.keys.pop(keyid, None)


_SIGNED_TYPES: dict[str, type[Signed]] = {cls.type: cls for cls in (Root, Timestamp, Snapshot, Targets)}


class Metadata:
    """A signed metadata file: ``signed`` (a Signed) and its ``signatures``.

    ``signed_bytes`` are the canonical bytes the signatures cover: computed
    once when parsed (from the parsed object, unknown fields included) and
    reused by every verification. They are recomputed by ``sign()``; after
    editing ``signed`` by hand, call ``sign()`` before serializing.
    """

    __slots__ = ("signed", "signatures", "unrecognized_fields", "_signed_bytes")

    def __init__(
        self,
        signed: Signed,
        signatures: dict[str, Signature] | None = None,
        unrecognized_fields: dict | None = None,
    ):
        self.signed = signed
        self.signatures = signatures if signatures is not None else {}
        self.unrecognized_fields = unrecognized_fields or {}
        self._signed_bytes: bytes | None = None

    @property
    def signed_bytes(self) -> bytes:
        if self._signed_bytes is None:
            self._signed_bytes = _canonical(self.signed.to_dict())
        elif type(self._signed_bytes) is not bytes:  # a view of the parsed input
            self._signed_bytes = bytes(self._signed_bytes)
        return self._signed_bytes

    def __getstate__(self):
        """Pickle and copy: the view of a parsed input becomes bytes."""
        signed_bytes = self._signed_bytes
        if signed_bytes is not None and type(signed_bytes) is not bytes:
            signed_bytes = bytes(signed_bytes)
        return None, {"signed": self.signed, "signatures": self.signatures,
                      "unrecognized_fields": self.unrecognized_fields,
                      "_signed_bytes": signed_bytes}

    def _signed_payload(self) -> bytes | memoryview:
        """What the signatures cover, without copying: a parse keeps the
        canonical span of its input as a view when it was canonical there."""
        if self._signed_bytes is None:
            return self.signed_bytes
        return self._signed_bytes

    @classmethod
    def from_bytes(cls, data: bytes) -> Metadata:
        """Parse and validate metadata bytes (UTF-8 JSON)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise DeserializationError(f"expected bytes, got {type(data).__name__}")
        try:
            envelope, signed_bytes = _backend.load_metadata_view(data)
        except FormatError as exc:
            raise DeserializationError(str(exc)) from exc
        return cls._from_parsed(envelope, signed_bytes)

    @classmethod
    def from_file(cls, filename: str) -> Metadata:
        """Parse the metadata file at ``filename`` (``StorageError`` if unreadable)."""
        try:
            with open(filename, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise StorageError(f"cannot read {filename}: {exc}") from exc
        return cls.from_bytes(data)

    @classmethod
    def from_dict(cls, metadata: Any) -> Metadata:
        """Build from a parsed JSON object (not modified)."""
        _dict(metadata, "metadata")
        signed_obj = _dict(_field(metadata, "signed", "metadata"), "signed")
        return cls._from_parsed(metadata, _canonical(signed_obj))

    @classmethod
    def _from_parsed(cls, metadata: dict, signed_bytes: bytes) -> Metadata:
        """Build from a parsed envelope and the canonical bytes of its
        "signed" (a dict: both callers checked)."""
        signed_obj = metadata["signed"]
        sig_list = _list(_field(metadata, "signatures", "metadata"), "signatures")
        signatures: dict[str, Signature] = {}
        for i, sig_obj in enumerate(sig_list):
            sig = Signature.from_dict(sig_obj, f"signatures[{i}]")
            if sig.keyid in signatures:
                raise _fail(f"signatures[{i}].keyid", "duplicate keyid", sig.keyid)
            signatures[sig.keyid] = sig
        kind = _field(signed_obj, "_type", "signed")
        signed_cls = _SIGNED_TYPES.get(kind) if type(kind) is str else None
        if signed_cls is None:
            raise _fail("signed._type", "expected root, timestamp, snapshot or targets", kind)
        self = cls.__new__(cls)
        self.signed = signed_cls._from_dict(signed_obj)
        self.signatures = signatures
        self.unrecognized_fields = _extra(metadata, _METADATA_FIELDS)
        self._signed_bytes = signed_bytes
        return self

    def to_dict(self) -> dict:
        return {
            "signatures": [sig.to_dict() for sig in self.signatures.values()],
            "signed": self.signed.to_dict(),
            **self.unrecognized_fields,
        }

    def to_bytes(self, serializer: Any = None) -> bytes:
        """The file's bytes: canonical JSON, or what ``serializer`` makes
        of this object (python-tuf's serializers work: they call
        ``to_dict``)."""
        if serializer is not None:
            return serializer.serialize(self)
        return _backend.canonical_json(self.to_dict())

    def to_file(self, filename: str | os.PathLike, serializer: Any = None,
                storage_backend: Any = None) -> None:
        """Write ``to_bytes(serializer)`` to ``filename``: atomically and
        durably (``StorageError`` on failure), or through ``storage_backend``
        (python-tuf's interface: ``put(fileobj, filename)``)."""
        data = self.to_bytes(serializer)
        if storage_backend is None:
            _atomic.write_atomic(os.fspath(filename), data)
            return
        with tempfile.TemporaryFile() as temp:
            temp.write(data)
            temp.seek(0)
            storage_backend.put(temp, filename)

    def sign(self, signer: Any, append: bool = False) -> Signature:
        """Sign the current ``signed`` with ``signer``; replace the existing
        signatures unless ``append``.

        ``signer`` is a ``tufc.signer`` signer (``sign`` returns hex) or a
        securesystemslib ``Signer`` (``sign`` returns a Signature).
        """
        self._signed_bytes = None
        data = self.signed_bytes
        result = signer.sign(data)
        if isinstance(result, str):
            sig = Signature(signer.public_key.keyid, result)
        else:
            sig = Signature(result.keyid, result.signature, dict(getattr(result, "unrecognized_fields", {}) or {}))
        if not append:
            self.signatures.clear()
        self.signatures[sig.keyid] = sig
        return sig

    def verify_delegate(self, delegated_role: str, delegated_metadata: Metadata) -> None:
        """Raise ``UnsignedMetadataError`` unless this (Root or Targets)
        metadata's keys for ``delegated_role`` signed ``delegated_metadata``."""
        if not isinstance(self.signed, _Delegator):
            raise TypeError("only root and targets metadata delegate")
        self.signed.verify_delegate(delegated_role, delegated_metadata)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Metadata) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Metadata({self.signed!r}, {len(self.signatures)} signatures)"


_METADATA_FIELDS = frozenset({"signed", "signatures"})
