"""The server side: publish and audit TUF repositories (Warehouse, mirrors).

``tufc.repository`` keeps a PEP 458 (or RSTUF-shaped) repository signed and
consistent as targets are added and removed, through a durable queue in the
database the registry already runs, and checks whole published
repositories.  The client (``tufc.Updater``) never imports it.

Names are imported on first use, as in ``tufc`` itself.
"""

from __future__ import annotations

import importlib

# public name -> submodule that defines it (imported lazily)
_LAZY: dict[str, str] = {
    "Repository": "engine",
    "PublishResult": "engine",
    "Layout": "layout",
    "Target": "changes",
    "Store": "store",
    "SqliteStore": "store",
    "open_store": "store",
    "PostgresStore": "pgstore",
    "load_signer": "signing",
    "rotate_online_key": "ceremony",
    "renew": "ceremony",
    "verify": "audit",
    "AuditResult": "problems",
    "Problem": "problems",
    "PROBLEM_KINDS": "problems",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tufc.repository' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
