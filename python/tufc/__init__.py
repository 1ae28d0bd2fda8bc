"""tufc: a fast, complete TUF (The Update Framework) library.

The client API mirrors python-tuf's ``tuf.ngclient``; the core (canonical
JSON, signature thresholds, streaming hashes) runs in C when the native
module ``tufc._tufc`` is available and in pure Python otherwise, with
identical results.  ``tufc.BACKEND`` says which one is in use.

The client and metadata classes are imported on first use, so that
``import tufc`` stays cheap for tools that only need the core.
"""

from __future__ import annotations

import importlib

from . import exceptions
from ._backend import BACKEND, Hasher, canonical_json, hash_file

__version__ = "0.1.0"

# public name -> submodule that defines it (imported lazily)
_LAZY = {
    "Key": "keys",
    "ThresholdResult": "keys",
    "verify_threshold": "keys",
    "Metadata": "metadata",
    "Signed": "metadata",
    "Signature": "metadata",
    "Root": "metadata",
    "Timestamp": "metadata",
    "Snapshot": "metadata",
    "Targets": "metadata",
    "Delegations": "metadata",
    "DelegatedRole": "metadata",
    "SuccinctRoles": "metadata",
    "MetaFile": "metadata",
    "TargetFile": "metadata",
    "Role": "metadata",
    "Ed25519Signer": "signer",
    "UpdaterConfig": "config",
    "EnvelopeType": "config",
    "FetcherInterface": "fetcher",
    "Urllib3Fetcher": "fetcher",
    "Updater": "updater",
}

__all__ = ["BACKEND", "Hasher", "canonical_json", "exceptions", "hash_file", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tufc' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
