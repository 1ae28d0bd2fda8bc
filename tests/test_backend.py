"""Backend selection: which core runs, and that a broken build never hides."""

import hashlib
import importlib.util
import os
import pathlib
import subprocess
import sys
import textwrap

import pytest

import tufc
from tufc import _backend, _pure

CONTRACT = (
    "MAX_DEPTH",
    "canonical_json",
    "PublicKey",
    "verify_many",
    "Hasher",
    "hash_file",
    "ed25519_public_key",
    "ed25519_sign",
    "load_metadata",
    "EntryMap",
    "misplaced_targets",
    "patch_targets",
)

# Makes `import tufc._tufc` fail, as on a machine without a compiler.
_BLOCK_NATIVE = textwrap.dedent(
    """
    import sys
    class _Block:
        def find_spec(self, name, path=None, target=None):
            if name == "tufc._tufc":
                raise ImportError("native core blocked by the test")
            return None
    sys.meta_path.insert(0, _Block())
    """
)


def _run(code, **env):
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TUFC_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], env=full_env, capture_output=True, text=True
    )


def test_backend_reported_and_matches_environment():
    assert tufc.BACKEND in ("native", "python")
    if os.environ.get("TUFC_PURE_PYTHON", "0") not in ("", "0"):
        assert tufc.BACKEND == "python"
    if os.environ.get("TUFC_REQUIRE_NATIVE", "0") not in ("", "0"):
        assert tufc.BACKEND == "native"


def test_pure_python_forced_by_environment():
    out = _run("import tufc; print(tufc.BACKEND)", TUFC_PURE_PYTHON="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "python"


def test_missing_extension_falls_back_and_says_why():
    code = _BLOCK_NATIVE + textwrap.dedent(
        """
        import tufc, tufc._backend as b
        print(tufc.BACKEND, type(b.NATIVE_IMPORT_ERROR).__name__)
        print(tufc.canonical_json({"b": 1, "a": [True, None]}).decode())
        """
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["python", "ImportError", '{"a":[true,null],"b":1}']


def test_require_native_turns_missing_extension_into_import_error():
    out = _run(_BLOCK_NATIVE + "import tufc", TUFC_REQUIRE_NATIVE="1")
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "TUFC_REQUIRE_NATIVE" in out.stderr


def test_contradictory_flags_refused():
    out = _run("import tufc", TUFC_REQUIRE_NATIVE="1", TUFC_PURE_PYTHON="1")
    assert out.returncode != 0
    assert "ImportError" in out.stderr


def test_both_cores_export_the_contract(native):
    for name in CONTRACT:
        assert hasattr(native, name), name
        assert hasattr(_pure, name), name
    assert native.MAX_DEPTH == _pure.MAX_DEPTH


def test_backend_module_exports_the_active_core():
    impl = _backend._impl
    for name in CONTRACT:
        assert getattr(_backend, name) is getattr(impl, name)


def test_native_module_loads_twice_with_separate_state(native):
    """Multi-phase init: a second instance of the module is independent."""
    spec = importlib.util.spec_from_file_location("tufc._tufc", native.__file__)
    second = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(second)
    assert second is not native
    assert second.Hasher is not native.Hasher
    assert second.canonical_json({"x": [1]}) == native.canonical_json({"x": [1]})
    h = second.Hasher(["sha256"])
    h.update(b"abc")
    assert h.hexdigests() == {"sha256": hashlib.sha256(b"abc").hexdigest()}
    with pytest.raises(tufc.exceptions.FormatError):
        second.canonical_json(1.5)


def test_public_api_names_resolve():
    """Every advertised name exists, and the client names match ngclient's."""
    for name in tufc.__all__:
        assert getattr(tufc, name) is not None, name
    from tuf import ngclient

    for name in ("Updater", "UpdaterConfig", "FetcherInterface", "Urllib3Fetcher"):
        assert hasattr(ngclient, name) and hasattr(tufc, name)
    with pytest.raises(AttributeError):
        tufc.no_such_name


def test_install_without_native_core_says_so(tmp_path):
    """A pure install (TUFC_BUILD_NATIVE=0) falls back and names the cause."""
    import shutil

    package = pathlib.Path(tufc.__file__).parent
    shutil.copytree(package, tmp_path / "tufc",
                    ignore=shutil.ignore_patterns("*.so", "*.pyd", "__pycache__"))
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path)!r})
        import tufc, tufc._backend as b
        assert tufc.__file__.startswith({str(tmp_path)!r}), tufc.__file__
        print(tufc.BACKEND)
        print(b.NATIVE_IMPORT_ERROR)
        """
    )
    out = _run(code)
    assert out.returncode == 0, out.stderr
    backend, reason = out.stdout.splitlines()
    assert backend == "python"
    assert "not installed" in reason and "TUFC_BUILD_NATIVE=0" in reason
    required = _run(code, TUFC_REQUIRE_NATIVE="1")
    assert required.returncode != 0
    assert "not installed" in required.stderr


def test_block_growth_sees_a_leak_of_one_object_per_call():
    """The leak checks' yardstick: a real per-call leak is never noise."""
    from tests.conftest import block_growth

    kept = []
    assert block_growth(lambda n: kept.extend(object() for _ in range(n)), 500) >= 500
    assert block_growth(lambda n: [object() for _ in range(n)], 500) < 100
