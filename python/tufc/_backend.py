"""The one place that chooses between the native and the pure-Python core.

Both cores export the same names with the same behaviour (see
``docs/design.rst``).  ``TUFC_PURE_PYTHON=1`` forces the pure-Python core;
``TUFC_REQUIRE_NATIVE=1`` makes a missing or broken extension an ImportError
instead of a fallback.  Everything else in tufc calls through this module.
"""

from __future__ import annotations

import importlib.util
import os

from . import _pure

def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip() not in ("", "0")


def _native_present() -> bool:
    try:
        return importlib.util.find_spec(f"{__package__}._tufc") is not None
    except ImportError:  # an import hook refused it: report its own error
        return True


def _load():
    if _flag("TUFC_PURE_PYTHON"):
        if _flag("TUFC_REQUIRE_NATIVE"):
            raise ImportError(
                "TUFC_PURE_PYTHON and TUFC_REQUIRE_NATIVE are both set"
            )
        return "python", _pure, None
    try:
        from . import _tufc as native
    except ImportError as exc:
        if not _native_present():
            # Python words this as a circular import: say what happened.
            exc = ImportError(
                "the native core tufc._tufc is not installed (built without "
                "a C compiler or libraries, or with TUFC_BUILD_NATIVE=0)"
            )
        if _flag("TUFC_REQUIRE_NATIVE"):
            raise ImportError(
                "TUFC_REQUIRE_NATIVE is set but the native module tufc._tufc "
                f"could not be imported: {exc}"
            ) from exc
        return "python", _pure, exc
    return "native", native, None


BACKEND, _impl, NATIVE_IMPORT_ERROR = _load()

canonical_json = _impl.canonical_json
PublicKey = _impl.PublicKey
verify_many = _impl.verify_many
Hasher = _impl.Hasher
hash_file = _impl.hash_file
ed25519_public_key = _impl.ed25519_public_key
ed25519_sign = _impl.ed25519_sign
MAX_DEPTH = _impl.MAX_DEPTH
load_metadata = _impl.load_metadata
load_metadata_view = _impl.load_metadata_view
EntryMap = _impl.EntryMap
misplaced_targets = _impl.misplaced_targets
patch_targets = _impl.patch_targets
