"""The fuzz harnesses in fuzz/ and their seed corpora, as ordinary tests use them."""

import importlib.util
import pathlib

FUZZ = pathlib.Path(__file__).resolve().parents[1] / "fuzz"


def harness(name: str):
    """Import fuzz/NAME.py (it is not a package)."""
    spec = importlib.util.spec_from_file_location(f"tufc_fuzz_{name}", FUZZ / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def seeds(kind: str) -> list:
    """The seed files of one corpus; a missing or empty corpus is an error."""
    found = sorted((FUZZ / "seeds" / kind).iterdir())
    if not found:
        raise RuntimeError(f"no fuzz seeds in {FUZZ / 'seeds' / kind}")
    return found
