"""tufc: a fast, complete TUF (The Update Framework) library.

The client API mirrors python-tuf's ``tuf.ngclient``; the core (canonical
JSON, signature thresholds, streaming hashes) runs in C when the native
module ``tufc._tufc`` is available and in pure Python otherwise, with
identical results.  ``tufc.BACKEND`` says which one is in use.
"""

from . import exceptions
from ._backend import BACKEND, Hasher, canonical_json, hash_file

__version__ = "0.1.0"

__all__ = [
    "BACKEND",
    "Hasher",
    "canonical_json",
    "exceptions",
    "hash_file",
]
