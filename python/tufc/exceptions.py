"""tufc's exception hierarchy.

Every failure tufc reports is a :class:`TufcError`.  The class names that
python-tuf's ``tuf.api.exceptions`` defines exist here with the same meaning
and the same inheritance, so code written against python-tuf catches the
same failures after switching its import to tufc.
"""

from __future__ import annotations


class TufcError(Exception):
    """Base class of every exception tufc raises on purpose."""


# --- malformed input -------------------------------------------------------


class FormatError(TufcError, ValueError):
    """Input is malformed: wrong type, non-canonical, oversized or truncated."""


class UnsupportedAlgorithmError(FormatError):
    """A hash algorithm, key type or signature scheme tufc does not implement.

    Raised wherever an unknown algorithm would otherwise be skipped: tufc
    fails closed.
    """


class StorageError(TufcError, OSError):
    """Reading or writing the local metadata or target cache failed.

    Also an ``OSError``: code written for python-tuf catches cache failures
    as ``OSError``.
    """


# --- one signature (securesystemslib names, for Key.verify_signature) -------


class UnverifiedSignatureError(TufcError):
    """A signature is not the key's signature of the data."""


class VerificationError(UnverifiedSignatureError):
    """A signature could not be checked at all: another key id, malformed
    hex, or a key tufc cannot use.  As in securesystemslib, also an
    ``UnverifiedSignatureError``."""


# --- repository errors (python-tuf names) -----------------------------------


class RepositoryError(TufcError):
    """The repository served something that failed a TUF check."""


class DeserializationError(RepositoryError):
    """Metadata bytes are not valid TUF metadata (bad JSON, types, fields)."""


class UnsignedMetadataError(RepositoryError):
    """Metadata is not signed by a threshold of the keys trusted for it."""


class BadVersionNumberError(RepositoryError):
    """A metadata version is not the expected one (rollback or mismatch)."""


class EqualVersionNumberError(BadVersionNumberError):
    """A new metadata file has the same version as the trusted one."""


class ExpiredMetadataError(RepositoryError):
    """Metadata has expired as of the reference time of the update."""


class LengthOrHashMismatchError(RepositoryError):
    """Data does not have the length or the hashes its metadata declares."""


# --- download errors (python-tuf names) -------------------------------------


class ClockRollbackError(TufcError):
    """The local clock is far behind the newest time this metadata_dir has
    seen (metadata_dir/latest_known_time): expiry cannot be judged."""


class OfflineError(TufcError):
    """An offline Updater (``UpdaterConfig(offline=True)``) needs what its
    cache does not hold: metadata never fetched, or a target download."""


class DownloadError(TufcError):
    """Fetching a file failed."""


class DownloadLengthMismatchError(DownloadError):
    """More bytes arrived than the declared or maximum length allows."""


class SlowRetrievalError(DownloadError):
    """The server sent data too slowly (or not at all) for too long."""


class DownloadHTTPError(DownloadError):
    """The server answered with an HTTP error status."""

    def __init__(self, message: str, status_code: int):
        super().__init__(message)
        self.status_code = status_code


# --- the repository engine (server side) -------------------------------------


class InvalidChangeError(FormatError):
    """A requested repository change is malformed: a path that is not a
    valid target path, a negative length, an unknown hash algorithm, the
    same path twice in one batch.  Nothing was enqueued."""


class TargetNotFoundError(InvalidChangeError):
    """A removal names a target path the repository does not hold."""


class PublishError(TufcError):
    """A publish could not complete.  The previously published repository
    stays valid and the queue keeps every change for the next publish."""


class SigningError(PublishError):
    """A signer raised, returned something unusable or timed out."""


class StoreError(PublishError):
    """The change queue's database failed: locked, unreachable, or gone
    mid-batch."""


class PublisherBusyError(StoreError):
    """Another publisher holds the repository's publisher lock."""


class NotListedError(TufcError):
    """A name the verified metadata does not list (``tufc proxy``'s 404):
    neither a target nor a file of a verified page."""


__all__ = [
    "TufcError",
    "FormatError",
    "UnsupportedAlgorithmError",
    "StorageError",
    "UnverifiedSignatureError",
    "VerificationError",
    "RepositoryError",
    "DeserializationError",
    "UnsignedMetadataError",
    "BadVersionNumberError",
    "EqualVersionNumberError",
    "ExpiredMetadataError",
    "LengthOrHashMismatchError",
    "DownloadError",
    "DownloadLengthMismatchError",
    "SlowRetrievalError",
    "DownloadHTTPError",
    "InvalidChangeError",
    "TargetNotFoundError",
    "PublishError",
    "SigningError",
    "StoreError",
    "PublisherBusyError",
    "NotListedError",
]
