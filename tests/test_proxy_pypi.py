"""tufc proxy with real packages: wheels and an sdist downloaded from PyPI
(with their dependencies and the sdist's build backend), signed into a
local TUF repository (tests/proxy_repo.py), served on 127.0.0.1 and
installed by real pip and uv into fresh virtual environments through the
proxy (tests/test_proxy.py's helpers); the installed packages import.  One
real wheel changed upstream: the install fails with the proxy's reason and
no tampered byte reaches the client's disk.

The download runs once per session.  Without PyPI the tests skip, saying
so, unless ``TUFC_REQUIRE_PYPI=1`` (as in CI), where they fail.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

import pytest

from tests.test_proxy import Setup, _cached_bytes, _tamper, _venv, pip_install, uv_install

# Pinned, with every dependency: requests brings idna, certifi,
# charset-normalizer (a platform wheel) and urllib3; six and packaging are
# wheels without dependencies; tomli is installed from its sdist, whose
# build backend flit_core (a wheel, no dependencies) the installers fetch
# through the proxy too, for their isolated build.
TOP_LEVEL = ["requests", "six", "packaging", "tomli"]
PINNED = ["requests==2.32.3", "idna==3.10", "certifi==2024.8.30", "charset-normalizer==3.4.0",
          "urllib3==2.2.3", "six==1.16.0", "packaging==24.1", "tomli==2.0.1", "flit_core==3.9.0"]
SDISTS = ["tomli"]
IMPORTS = "import requests, idna, certifi, charset_normalizer, urllib3, six, packaging.version, tomli"
MARKER = b"EVILXYZ"


def _download_env() -> dict:
    """PyPI itself (or the caller's PIP_INDEX_URL): none of the caller's
    pip configuration (here local wheel folders and extra indexes), but its
    certificates, timeout and HTTP proxy."""
    keep = ("PIP_INDEX_URL", "PIP_CERT", "PIP_CLIENT_CERT", "PIP_TRUSTED_HOST", "PIP_PROXY",
            "PIP_DEFAULT_TIMEOUT")
    env = {k: v for k, v in os.environ.items()
           if (not k.startswith("PIP_") or k in keep) and not k.startswith(("ASAN_", "UBSAN_"))
           and k != "LD_PRELOAD"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


@pytest.fixture(scope="session")
def pypi_files(tmp_path_factory) -> list:
    """The downloaded distribution files' paths (downloaded once)."""
    dest = tmp_path_factory.mktemp("pypi")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--dest", str(dest), "--retries", "2",
         "--only-binary", ":all:", "--no-binary", ",".join(SDISTS), *PINNED],
        env=_download_env(), capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-5:])
        message = f"cannot download the test packages from PyPI (pip download exit {result.returncode}):\n{tail}"
        if os.environ.get("TUFC_REQUIRE_PYPI") == "1":
            pytest.fail(f"TUFC_REQUIRE_PYPI=1: {message}")
        pytest.skip(f"{message}\n(set TUFC_REQUIRE_PYPI=1 to make this a failure)")
    files = sorted(glob.glob(str(dest / "*")))
    names = [os.path.basename(f) for f in files]
    assert len(files) == len(PINNED), names
    assert [n for n in names if n.endswith(".tar.gz")] == ["tomli-2.0.1.tar.gz"], names
    return files


@pytest.fixture
def pypi(tmp_path, pypi_files):
    """The downloaded files signed into a fresh repository, its upstream
    server and a proxy with an empty cache."""
    s = Setup(tmp_path, populate=lambda repo: repo.add_distributions(pypi_files))
    yield s
    s.stop()


def _target(pypi, prefix: str) -> str:
    (path,) = [p for p in pypi.repo.targets if p.startswith(f"packages/{prefix}") and p.endswith((".whl", ".tar.gz"))]
    return path


def _check_installed(pypi, python) -> None:
    out = subprocess.run([python, "-c", f"{IMPORTS}; print(requests.__version__, tomli.__version__)"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["2.32.3", "2.0.1"]
    # the sdist and its build backend came through the proxy (the isolated
    # build had no other index)
    requested = " ".join(pypi.upstream.paths_requested())
    assert "tomli-2.0.1.tar.gz" in requested
    assert "flit_core-3.9.0-py3-none-any.whl" in requested


def test_pypi_page_lists_real_files(pypi):
    status, _, body = pypi.get("simple/charset-normalizer/")
    text = body.decode()
    assert status == 200 and "/files/charset-normalizer/charset_normalizer-3.4.0-" in text
    assert 'data-requires-python="&gt;=3.7.0"' in text and "data-core-metadata" in text


def test_pip_installs_real_packages_through_the_proxy(pypi, tmp_path):
    python = _venv(tmp_path / "venv")
    result = pip_install(python, pypi.url + "simple/", *TOP_LEVEL)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_installed(pypi, python)


def test_uv_installs_real_packages_through_the_proxy(pypi, tmp_path):
    python = _venv(tmp_path / "venv")
    result = uv_install(python, pypi.url + "simple/", tmp_path / "uvcache", *TOP_LEVEL)
    assert result.returncode == 0, result.stdout + result.stderr
    _check_installed(pypi, python)


@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_tampered_real_wheel_fails_the_install(pypi, tmp_path, tool):
    """urllib3's wheel (a dependency of requests) changed upstream, same
    length: the proxy refuses it with a 409, the installer fails showing
    the proxy's reason, and no tampered byte is in the venv, the
    installer's cache or the proxy's cache."""
    path = _target(pypi, "urllib3-2.2.3-")
    data = pypi.repo.targets[path]
    middle = len(data) // 2
    _tamper(pypi, path, data[:middle] + MARKER + data[middle + len(MARKER):])
    python = _venv(tmp_path / "venv")
    cache = tmp_path / "installer-cache"
    if tool == "pip":
        result = pip_install(python, pypi.url + "simple/", "requests")  # PIP_NO_CACHE_DIR=1
        reason = "409 Client Error: tufc proxy: length/hash check failed"
    else:
        result = uv_install(python, pypi.url + "simple/", cache, "requests")
        reason = "409 tufc proxy: length/hash check failed"
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert reason in output, output
    for folder in (tmp_path / "venv", cache, pypi.cache):
        assert not any(MARKER in blob for blob in _cached_bytes(folder)), folder
    site = tmp_path / "venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}" / "site-packages"
    assert not list(site.glob("urllib3*"))
    assert subprocess.run([python, "-c", "import urllib3"], capture_output=True).returncode != 0
