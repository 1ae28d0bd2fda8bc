"""Import tufc for a benchmark even while parts of it are still being built.

The native module may be mid-rewrite (``import tufc`` then fails on a
missing name); the benchmarks still want the pure core and the references,
so a failed import is retried with the pure backend forced.
"""

from __future__ import annotations

import importlib
import os
import sys
from types import ModuleType
from typing import Optional


class Tufc:
    """What of tufc could be imported, and why the rest could not."""

    def __init__(self) -> None:
        self.package: Optional[ModuleType] = None
        self.native: Optional[ModuleType] = None
        self.pure: Optional[ModuleType] = None
        self.errors: dict[str, str] = {}

    @property
    def backend(self) -> str:
        if self.package is None:
            return "n/a (import tufc failed)"
        return str(getattr(self.package, "BACKEND", "?"))


def _purge() -> None:
    for name in [m for m in sys.modules if m == "tufc" or m.startswith("tufc.")]:
        del sys.modules[name]


def load() -> Tufc:
    found = Tufc()
    try:
        found.package = importlib.import_module("tufc")
    except Exception as exc:  # noqa: BLE001 - reported in the output
        found.errors["package"] = f"{type(exc).__name__}: {exc}"
        if os.environ.get("TUFC_PURE_PYTHON") != "1":
            _purge()
            os.environ["TUFC_PURE_PYTHON"] = "1"
            try:
                found.package = importlib.import_module("tufc")
                found.errors["package"] += " (retried with TUFC_PURE_PYTHON=1)"
            except Exception as exc2:  # noqa: BLE001
                found.errors["package"] += f"; pure retry: {exc2}"
            finally:
                del os.environ["TUFC_PURE_PYTHON"]
    for attr, modname in (("pure", "tufc._pure"), ("native", "tufc._tufc")):
        try:
            setattr(found, attr, importlib.import_module(modname))
        except Exception as exc:  # noqa: BLE001
            found.errors[attr] = f"{type(exc).__name__}: {exc}"
    return found


def submodule(found: Tufc, name: str) -> ModuleType:
    """``tufc.<name>``; raises ImportError when tufc itself did not import."""
    if found.package is None:
        raise ImportError("tufc did not import")
    return importlib.import_module(f"tufc.{name}")
