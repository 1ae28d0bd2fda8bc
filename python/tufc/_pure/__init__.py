"""The pure-Python core: the twin of every function in the native ``_tufc``.

PEP 480 requires that pip can verify TUF metadata without a compiled
extension, so this package needs nothing beyond the standard library and
must give the native core's answer on every input.
"""

from .canonical import MAX_DEPTH, canonical_json
from .hashing import Hasher, hash_file
from .keys import PublicKey, verify_many
from .ed25519 import ed25519_public_key, ed25519_sign
from .loader import EntryMap, load_metadata, load_metadata_view
from .bins import misplaced_targets
from .patch import patch_targets

__all__ = [
    "MAX_DEPTH",
    "canonical_json",
    "Hasher",
    "hash_file",
    "PublicKey",
    "verify_many",
    "ed25519_public_key",
    "ed25519_sign",
    "load_metadata",
    "load_metadata_view",
    "EntryMap",
    "misplaced_targets",
    "patch_targets",
]
