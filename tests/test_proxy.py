"""tufc proxy end to end: a local TUF repository (tufc's engine, served by
tests/http_repo.py on 127.0.0.1), the proxy in front of it, and real
clients: urllib for the protocol, real pip and uv for installs.  The
upstream is then tampered with and every client must fail with the
proxy's reason, with no tampered byte on its disk.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from tufc.exceptions import FormatError
from tufc.proxy import Index, Names, ProxyServer, tools

from tests.http_repo import HttpRepo
from tests.proxy_repo import ProxyRepo, page, sha256

JSON = "application/vnd.pypi.simple.v1+json"
WHEEL = "alpha-1.0-py3-none-any.whl"


class Setup:
    """Upstream repository, its server and a proxy in front of it."""

    def __init__(self, tmp_path, refresh_interval=300.0, populate=None):
        """``populate(repo)`` adds the projects (by default the tiny alpha,
        beta, gamma and sigma)."""
        self.tmp = tmp_path
        self.now = datetime.datetime.now(datetime.timezone.utc)
        self.repo = ProxyRepo(tmp_path / "repo", clock=lambda: self.now)
        (populate or _tiny_projects)(self.repo)
        self.repo.publish()
        self.upstream = HttpRepo(self.repo.files()).start()
        self.metadata_dir = tmp_path / "client"
        self.metadata_dir.mkdir()
        (self.metadata_dir / "root.json").write_bytes(self.repo.root())
        self.cache = tmp_path / "cache"
        self.index = Index(str(self.metadata_dir), self.upstream.url + "metadata/",
                           self.upstream.url + "targets/", str(self.cache),
                           refresh_interval=refresh_interval)
        self.server = ProxyServer(self.index)
        self.server.start()
        self.url = self.server.url

    def serve_again(self) -> None:
        """The upstream serves the repository as now published."""
        self.upstream.files.update(self.repo.files())

    def get(self, path, accept=None):
        request = urllib.request.Request(self.url + path, headers={"Accept": accept} if accept else {})
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.headers, response.read()

    def fail(self, path, accept=None):
        with pytest.raises(urllib.error.HTTPError) as info:
            self.get(path, accept)
        return info.value.code, info.value.reason, info.value.read().decode()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
        self.upstream.stop()


def _tiny_projects(repo) -> None:
    repo.add_project("beta")
    repo.add_project("alpha", requires=["beta"], body="import beta\n")
    repo.add_project("gamma", versions=("1.0", "2.0"), metadata=False)
    repo.add_sdist_project("sigma")


@pytest.fixture
def setup(tmp_path):
    s = Setup(tmp_path)
    yield s
    s.stop()


def _cached_bytes(folder) -> list:
    out = []
    for dirpath, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(dirpath, name), "rb") as f:
                out.append(f.read())
    return out


# --- pages ------------------------------------------------------------------------


def test_html_page_links_point_at_the_proxy_and_keep_attributes(setup):
    status, headers, body = setup.get("simple/alpha/", "text/html")
    text = body.decode()
    data = setup.repo.targets[f"packages/{WHEEL}"]
    meta = setup.repo.targets[f"packages/{WHEEL}.metadata"]
    assert status == 200 and headers["Content-Type"] == "text/html"
    assert setup.get("simple/alpha/")[1]["Content-Type"] == "application/vnd.pypi.simple.v1+html"
    assert f'href="/files/alpha/{WHEEL}#sha256={sha256(data)}"' in text
    assert 'data-requires-python="&gt;=3.8"' in text
    assert f'data-core-metadata="sha256={sha256(meta)}"' in text
    assert f'data-dist-info-metadata="sha256={sha256(meta)}"' in text
    assert setup.upstream.url not in text


def test_json_page_by_content_negotiation(setup):
    status, headers, body = setup.get("simple/Alpha/", f"{JSON}, text/html;q=0.1")
    page_json = json.loads(body)
    assert headers["Content-Type"] == JSON
    assert page_json["name"] == "alpha" and page_json["meta"]["api-version"] == "1.0"
    (entry,) = page_json["files"]
    assert entry["url"] == f"/files/alpha/{WHEEL}"
    assert entry["hashes"] == {"sha256": sha256(setup.repo.targets[f"packages/{WHEEL}"])}
    assert entry["requires-python"] == ">=3.8"
    assert entry["core-metadata"] == {"sha256": sha256(setup.repo.targets[f"packages/{WHEEL}.metadata"])}


def test_yanked_attribute_kept(tmp_path):
    from tufc.proxy import pages

    links = pages.parse(page("x", [("x-1.whl#sha256=ab", ' data-yanked="bad build"'),
                                    ("x-2.whl", " data-yanked")]), "http://h/simple/x/")
    html_text = pages.render_html("x", links).decode()
    files = json.loads(pages.render_json("x", links))["files"]
    assert 'data-yanked="bad build"' in html_text and 'data-yanked=""' in html_text
    assert [f["yanked"] for f in files] == ["bad build", True]


def test_project_tuf_does_not_list_is_404(setup):
    status, reason, body = setup.fail("simple/nothere/")
    assert status == 404 and "TUF lists no simple page" in body
    assert setup.fail("simple/")[0] == 404
    assert setup.fail(f"files/alpha/{WHEEL}.asc")[0] == 404
    assert setup.fail("files/gamma/gamma-1.0-py3-none-any.whl.metadata")[0] == 404


# --- files ------------------------------------------------------------------------


def test_file_and_metadata_verified_and_cached(setup):
    status, headers, body = setup.get(f"files/alpha/{WHEEL}")
    assert body == setup.repo.targets[f"packages/{WHEEL}"]
    assert int(headers["Content-Length"]) == len(body) and "Accept-Ranges" not in headers
    assert setup.get(f"files/alpha/{WHEEL}.metadata")[2] == setup.repo.targets[f"packages/{WHEEL}.metadata"]
    # a second request is served from the cache (re-verified), even when the
    # upstream is gone; a changed cached copy is fetched again
    setup.upstream.clear_requests()
    assert setup.get(f"files/alpha/{WHEEL}")[2] == body
    assert not [p for p in setup.upstream.paths_requested() if p.startswith("/targets/packages/")]
    for dirpath, _, names in os.walk(setup.cache):
        for name in names:
            with open(os.path.join(dirpath, name), "r+b") as f:
                f.write(b"X")
    assert setup.get(f"files/alpha/{WHEEL}")[2] == body


def test_range_requests_get_the_whole_verified_file(setup):
    request = urllib.request.Request(setup.url + f"files/alpha/{WHEEL}", headers={"Range": "bytes=0-9"})
    with urllib.request.urlopen(request) as response:
        assert response.status == 200
        assert response.read() == setup.repo.targets[f"packages/{WHEEL}"]


def test_fifty_concurrent_downloads(setup):
    files = {f"files/gamma/gamma-{v}-py3-none-any.whl": setup.repo.targets[f"packages/gamma-{v}-py3-none-any.whl"]
             for v in ("1.0", "2.0")}
    files[f"files/alpha/{WHEEL}"] = setup.repo.targets[f"packages/{WHEEL}"]
    files["files/beta/beta-1.0-py3-none-any.whl"] = setup.repo.targets["packages/beta-1.0-py3-none-any.whl"]
    wanted = [list(files)[i % len(files)] for i in range(50)]
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        got = list(pool.map(lambda p: setup.get(p)[2], wanted))
    assert got == [files[p] for p in wanted]
    # each file was fetched from the upstream once, the rest waited for it
    fetched = [p for p in setup.upstream.paths_requested() if p.startswith("/targets/packages/")]
    assert len(fetched) == len(set(fetched)) == len(files)


def test_file_outside_tuf_is_verified_by_the_page_hash(tmp_path):
    """A link TUF has no target for (another host, as PyPI's pages link
    files.pythonhosted.org) is served only if it matches the verified
    page's hash; without a hash it is refused."""
    s = Setup(tmp_path)
    try:
        good, bad = b"outside file\n", b"tampered outside file\n"
        s.upstream.files["elsewhere/delta-1.0.tar.gz"] = good
        s.upstream.files["elsewhere/delta-2.0.tar.gz"] = bad
        s.upstream.files["elsewhere/delta-3.0.tar.gz"] = good
        s.repo.targets["simple/delta/index.html"] = page("delta", [
            (f"{s.upstream.url}elsewhere/delta-1.0.tar.gz#sha256={sha256(good)}", ""),
            (f"{s.upstream.url}elsewhere/delta-2.0.tar.gz#sha256={sha256(b'released')}", ""),
            (f"{s.upstream.url}elsewhere/delta-3.0.tar.gz", "")])
        s.repo.publish(["simple/delta/index.html"])
        s.serve_again()
        s.index.refresh()
        assert s.get("files/delta/delta-1.0.tar.gz")[2] == good
        status, reason, body = s.fail("files/delta/delta-2.0.tar.gz")
        assert status == 409 and "hash" in body
        status, reason, body = s.fail("files/delta/delta-3.0.tar.gz")
        assert status == 409 and "no hash" in body
        assert bad not in _cached_bytes(s.cache)
    finally:
        s.stop()


# --- tampering ---------------------------------------------------------------------


def _tamper(setup, path: str, data: bytes) -> None:
    """The upstream serves ``data`` under target ``path``'s published name."""
    original = setup.repo.targets[path]
    folder, _, name = path.rpartition("/")
    setup.upstream.files[f"targets/{folder}/{sha256(original)}.{name}"] = data


def test_changed_wheel_is_409_and_never_cached(setup):
    tampered = setup.repo.targets[f"packages/{WHEEL}"].replace(b"VERSION", b"EVILXYZ")
    _tamper(setup, f"packages/{WHEEL}", tampered)
    status, reason, body = setup.fail(f"files/alpha/{WHEEL}")
    assert status == 409 and "length/hash check failed" in body
    assert reason == body.strip() and "\n" not in reason
    assert tampered not in _cached_bytes(setup.cache)


def test_page_listing_a_file_tuf_does_not_know_is_409(setup):
    evil = page("alpha", [("../../packages/alpha-6.6-py3-none-any.whl#sha256=" + "0" * 64, "")])
    _tamper(setup, "simple/alpha/index.html", evil)
    status, reason, body = setup.fail("simple/alpha/")
    assert status == 409 and "length/hash check failed" in body
    assert setup.fail("files/alpha/alpha-6.6-py3-none-any.whl")[0] == 409


def test_page_of_another_project_is_409(setup):
    _tamper(setup, "simple/alpha/index.html", setup.repo.targets["simple/beta/index.html"])
    status, reason, body = setup.fail("simple/alpha/", JSON)
    assert status == 409 and "length/hash check failed" in body


def roll_back(setup):
    """The proxy trusts a newer snapshot; the upstream serves the old
    timestamp and snapshot again."""
    old = setup.repo.files()
    setup.repo.add_project("epsilon")
    setup.repo.publish(["simple/epsilon/index.html", "packages/epsilon-1.0-py3-none-any.whl"])
    setup.serve_again()
    setup.index.refresh()
    assert setup.get("simple/epsilon/")[0] == 200
    setup.upstream.files.update({k: v for k, v in old.items() if k.startswith("metadata/")})
    setup.index.refresh()


def expire(setup):
    """A new timestamp, validly signed, that expired a day ago (a freeze)."""
    assert setup.get("simple/alpha/")[0] == 200
    setup.now -= datetime.timedelta(days=2)
    setup.repo.add_project("epsilon")
    setup.repo.publish(["simple/epsilon/index.html"])
    setup.serve_again()
    setup.index.refresh()


def change_wheel(setup):
    wheel = setup.repo.targets["packages/beta-1.0-py3-none-any.whl"]
    _tamper(setup, "packages/beta-1.0-py3-none-any.whl", wheel.replace(b"VERSION", b"EVILXYZ"))


def list_unknown_file(setup):
    evil, _ = __import__("tests.proxy_repo", fromlist=["wheel"]).wheel("alpha", "6.6", body="EVILXYZ\n")
    setup.upstream.files["targets/packages/alpha-6.6-py3-none-any.whl"] = evil
    _tamper(setup, "simple/alpha/index.html", page("alpha", [
        (f"../../packages/alpha-6.6-py3-none-any.whl#sha256={sha256(evil)}", "")]))


def other_project_page(setup):
    _tamper(setup, "simple/alpha/index.html", setup.repo.targets["simple/beta/index.html"])


ATTACKS = {
    "changed wheel": (change_wheel, "length/hash check failed"),
    "page listing a file TUF does not know": (list_unknown_file, "length/hash check failed"),
    "rolled-back snapshot": (roll_back, "version check failed"),
    "expired timestamp": (expire, "expiry check failed"),
    "page of another project": (other_project_page, "length/hash check failed"),
}


def test_rolled_back_snapshot_is_409(setup):
    roll_back(setup)
    status, reason, body = setup.fail("simple/alpha/")
    assert status == 409 and "version check failed" in body and "timestamp" in body


def test_expired_timestamp_is_409(setup):
    expire(setup)
    status, reason, body = setup.fail("simple/alpha/")
    assert status == 409 and "expiry check failed" in body


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("tool", ["pip", "uv"])
def test_installers_fail_on_tampering_with_the_reason(setup, tmp_path, tool, attack, caplog):
    """pip (-vv: it logs why a page failed only at debug level) and uv fail,
    the proxy's one-line reason is in their output, neither asked again for
    what was refused (a retried refusal hides the reason: pip then reports
    only "too many ... error responses"), and no tampered byte is on the
    client's disk."""
    tamper, reason = ATTACKS[attack]
    tamper(setup)
    python = _venv(tmp_path / "venv")
    if tool == "pip":
        result = pip_install(python, setup.url + "simple/", "-vv", "alpha")
    else:
        result = uv_install(python, setup.url + "simple/", tmp_path / "uvcache", "alpha")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"tufc proxy: {reason}" in output
    assert "too many" not in output
    assert reason in caplog.text
    refusals = _refusals(caplog)
    assert refusals and len(refusals) == len(set(refusals)), refusals
    for folder in (tmp_path / "venv", tmp_path / "uvcache", setup.cache):
        assert not any(b"EVILXYZ" in data for data in _cached_bytes(folder))
    assert not (tmp_path / "venv" / "lib" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
                / "site-packages" / "alpha").exists()


def _refusals(caplog) -> list:
    """The proxy's log line for each request it refused (path and reason)."""
    return [r.getMessage() for r in caplog.records if r.name == "tufc.proxy.server"]


def test_refresh_at_most_every_interval(tmp_path):
    """One install sees one snapshot: a new release shows up only after the
    refresh interval."""
    s = Setup(tmp_path, refresh_interval=3600)
    try:
        assert s.fail("simple/epsilon/")[0] == 404
        s.repo.add_project("epsilon")
        s.repo.publish(["simple/epsilon/index.html"])
        s.serve_again()
        assert s.fail("simple/epsilon/")[0] == 404
        s.index.refresh_interval = 0
        assert s.get("simple/epsilon/")[0] == 200
    finally:
        s.stop()


# --- pip and uv ---------------------------------------------------------------------


def _venv(path) -> str:
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    return str(path / "bin" / "python")


def _pip_env() -> dict:
    """The installers' environment: no index or config of the caller's, and
    no sanitizer runtimes preloaded (the installers are not under test; the
    proxy, in this process, is)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "ASAN_", "UBSAN_")) and k != "LD_PRELOAD"}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_NO_CACHE_DIR="1",
               PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1")
    return env


def pip_install(python: str, index_url: str, *names):
    return subprocess.run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--index-url", index_url, *names],
        env=_pip_env(), capture_output=True, text=True, timeout=300)


def uv_install(python: str, index_url: str, cache, *names):
    env = _pip_env()
    env.update(UV_CACHE_DIR=str(cache), UV_NO_CONFIG="1")
    return subprocess.run(
        [_uv(), "pip", "install", "--python", python, "--default-index", index_url, *names],
        env=env, capture_output=True, text=True, timeout=300)


def _uv() -> str:
    program = shutil.which("uv")
    if program is None:
        pytest.skip("uv is not installed (the test extra installs it)")
    return program


def _site_files(venv) -> list:
    """Every file's bytes under the venv (what reached the client's disk)."""
    return _cached_bytes(venv)


def test_pip_installs_through_the_proxy(setup, tmp_path):
    python = _venv(tmp_path / "venv")
    result = pip_install(python, setup.url + "simple/", "alpha", "gamma", "sigma")
    assert result.returncode == 0, result.stderr
    out = subprocess.run([python, "-c", "import alpha, beta, gamma, sigma; print(gamma.VERSION, sigma.FROM_SDIST)"],
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "2.0 True"


def test_pip_fails_on_a_tampered_wheel(setup, tmp_path):
    python = _venv(tmp_path / "venv")
    marker = b"EVILXYZ"
    tampered = setup.repo.targets["packages/beta-1.0-py3-none-any.whl"].replace(b"VERSION", marker)
    _tamper(setup, "packages/beta-1.0-py3-none-any.whl", tampered)
    result = pip_install(python, setup.url + "simple/", "alpha")
    assert result.returncode != 0
    assert "409 Client Error: tufc proxy: length/hash check failed" in result.stderr
    assert not any(marker in data for data in _site_files(tmp_path / "venv"))
    assert not any(marker in data for data in _cached_bytes(setup.cache))


def test_pip_fails_on_a_tampered_page(setup, tmp_path, caplog):
    """pip logs why a page could not be fetched only at debug level (-vv);
    the reason is in the proxy's log, which ``tufc pip`` prints beside
    pip's output (see the tufc pip test)."""
    python = _venv(tmp_path / "venv")
    _tamper(setup, "simple/alpha/index.html", setup.repo.targets["simple/beta/index.html"])
    result = pip_install(python, setup.url + "simple/", "-vv", "alpha")
    assert result.returncode != 0
    assert "No matching distribution found for alpha" in result.stderr
    assert "tufc proxy: length/hash check failed" in result.stdout + result.stderr
    assert "/simple/alpha/: length/hash check failed" in caplog.text


def test_uv_installs_through_the_proxy(setup, tmp_path):
    python = _venv(tmp_path / "venv")
    result = uv_install(python, setup.url + "simple/", tmp_path / "uvcache", "alpha", "gamma", "sigma")
    assert result.returncode == 0, result.stderr
    subprocess.run([python, "-c", "import alpha, beta, gamma, sigma; assert sigma.FROM_SDIST"], check=True)


def test_uv_fails_on_a_tampered_wheel(setup, tmp_path):
    python = _venv(tmp_path / "venv")
    marker = b"EVILXYZ"
    tampered = setup.repo.targets["packages/beta-1.0-py3-none-any.whl"].replace(b"VERSION", marker)
    _tamper(setup, "packages/beta-1.0-py3-none-any.whl", tampered)
    result = uv_install(python, setup.url + "simple/", tmp_path / "uvcache", "alpha")
    assert result.returncode != 0
    assert "409 tufc proxy: length/hash check failed" in result.stderr
    assert not any(marker in data for data in _site_files(tmp_path / "venv"))
    assert not any(marker in data for data in _cached_bytes(tmp_path / "uvcache"))


# --- tufc pip / tufc uv ---------------------------------------------------------------


@pytest.mark.parametrize("args", [
    ["install", "--extra-index-url", "https://pypi.org/simple", "x"],
    ["install", "--extra-index-url=https://pypi.org/simple", "x"],
    ["install", "-ihttps://pypi.org/simple", "x"],
    ["install", "-f", "/tmp", "x"],
    ["install", "--find-links=/tmp", "x"],
    ["install", "x @ https://example.org/x-1.0.whl"],
    ["install", "git+https://example.org/x.git"],
])
def test_tools_refuse_indexes_that_bypass_the_proxy(args):
    with pytest.raises(FormatError):
        tools.check_arguments("pip", args, {})
    with pytest.raises(FormatError):
        tools.check_arguments("uv", ["pip", *args], {})


def test_tools_refuse_bypassing_environment_and_requirement_files(tmp_path):
    with pytest.raises(FormatError, match="PIP_EXTRA_INDEX_URL"):
        tools.check_arguments("pip", ["install", "x"], {"PIP_EXTRA_INDEX_URL": "https://x/"})
    with pytest.raises(FormatError, match="UV_INDEX"):
        tools.check_arguments("uv", ["pip", "install", "x"], {"UV_INDEX": "https://x/"})
    requirements = tmp_path / "req.txt"
    requirements.write_text("--extra-index-url https://pypi.org/simple\nalpha\n")
    with pytest.raises(FormatError, match="requirements file"):
        tools.check_arguments("pip", ["install", "-r", str(requirements)], {})
    requirements.write_text("alpha @ https://example.org/alpha-1.0.whl\n")
    with pytest.raises(FormatError, match="direct URL"):
        tools.check_arguments("pip", ["install", "-r", str(requirements)], {})
    tools.check_arguments("uv", ["pip", "install", "--index-strategy", "first-index", "x"], {})
    tools.check_arguments("pip", ["install", "--proxy", "http://proxy:3128", "x"], {})


def _tufc_pythonpath() -> str:
    """Where this process imported tufc from (the source tree with its
    in-place build, or a site-packages with its extension), first."""
    import tufc

    here = os.path.dirname(os.path.dirname(os.path.abspath(tufc.__file__)))
    return os.pathsep.join([here] + [p for p in [os.environ.get("PYTHONPATH")] if p])


def _tufc(args, env=None, **kw):
    full_env = dict(os.environ if env is None else env)
    full_env["PYTHONPATH"] = _tufc_pythonpath()
    return subprocess.run([sys.executable, "-m", "tufc", *args], env=full_env,
                          capture_output=True, text=True, timeout=300, **kw)


def _tool_options(setup, tmp_path, root):
    return ["--repo", setup.upstream.url + "metadata/", "--metadata-dir", str(tmp_path / "md"),
            "--cache-dir", str(tmp_path / "tcache"), "--root", str(root)]


def test_tufc_pip_refuses_extra_index(setup, tmp_path):
    root = tmp_path / "root.json"
    root.write_bytes(setup.repo.root())
    result = _tufc(["pip", *_tool_options(setup, tmp_path, root), "install",
                    "--extra-index-url", "https://pypi.org/simple", "alpha"])
    assert result.returncode == 1
    assert "--extra-index-url" in result.stderr and "bypass" in result.stderr


@pytest.mark.slow
def test_tufc_pip_and_uv_install_and_pass_on_the_exit_code(setup, tmp_path):
    root = tmp_path / "root.json"
    root.write_bytes(setup.repo.root())
    env = _pip_env()
    env.update(UV_CACHE_DIR=str(tmp_path / "uvcache"))
    python = _venv(tmp_path / "venv")
    options = _tool_options(setup, tmp_path, root)
    result = _tufc(["pip", *options, "--", "--python", python, "install", "alpha"], env)
    assert result.returncode == 0, result.stderr
    subprocess.run([python, "-c", "import alpha, beta"], check=True)
    result = _tufc(["pip", *options, "--", "--python", python, "install", "nothere"], env)
    assert result.returncode == 1 and "nothere" in result.stdout + result.stderr

    if shutil.which("uv") is None:
        pytest.skip("uv is not installed")
    python = _venv(tmp_path / "venv2")
    result = _tufc(["uv", *options, "--", "pip", "install", "--python", python, "gamma==1.0"], env)
    assert result.returncode == 0, result.stderr
    subprocess.run([python, "-c", "import gamma; assert gamma.VERSION == '1.0'"], check=True)
    # tampered (and not in the proxy's cache yet): uv fails, and the
    # proxy's reason is in the same output
    options[options.index("--cache-dir") + 1] = str(tmp_path / "fresh-cache")
    tampered = setup.repo.targets["packages/beta-1.0-py3-none-any.whl"].replace(b"VERSION", b"EVILXYZ")
    _tamper(setup, "packages/beta-1.0-py3-none-any.whl", tampered)
    python = _venv(tmp_path / "venv3")
    result = _tufc(["uv", *options, "--", "pip", "install", "--python", python, "beta"],
                   env)
    assert result.returncode != 0
    assert "tufc proxy: /files/beta/beta-1.0-py3-none-any.whl: length/hash check failed" in result.stderr
    assert "409 tufc proxy: length/hash check failed" in result.stderr  # uv shows the reason too


def test_warehouse_layout(tmp_path):
    """Warehouse's names: pages ``simple/<project>/index.html``, files
    ``packages/xx/yy/<blake2b rest>/<file>`` under another host's URL, not
    hash-prefixed (their path holds their BLAKE2b already)."""
    from tests.proxy_repo import wheel

    repo = ProxyRepo(tmp_path / "repo")
    data, _ = wheel("wh", "1.0")
    digest = hashlib.blake2b(data, digest_size=32).hexdigest()
    target = f"packages/{digest[:2]}/{digest[2:4]}/{digest[4:]}/wh-1.0-py3-none-any.whl"
    upstream = HttpRepo().start()
    files_url = upstream.url + "files/"
    repo.targets[target] = data
    repo.targets["simple/wh/index.html"] = page("wh", [(f"{files_url}{target}#sha256={sha256(data)}", "")])
    repo.publish()
    upstream.files.update(repo.metadata())
    upstream.files["targets/simple/wh/" + sha256(repo.targets["simple/wh/index.html"]) + ".index.html"] = \
        repo.targets["simple/wh/index.html"]
    upstream.files["files/" + target] = data
    (tmp_path / "client").mkdir()
    (tmp_path / "client" / "root.json").write_bytes(repo.root())
    index = Index(str(tmp_path / "client"), upstream.url + "metadata/", upstream.url + "targets/",
                  str(tmp_path / "cache"), Names(files_url=files_url, file_hash_prefix=False))
    server = ProxyServer(index)
    server.start()
    try:
        with urllib.request.urlopen(server.url + "files/wh/wh-1.0-py3-none-any.whl") as response:
            assert response.read() == data
        assert upstream.count("files/" + target) == 1
    finally:
        server.shutdown()
        server.server_close()
        upstream.stop()


def test_tufc_proxy_command_serves_until_sigterm(setup, tmp_path):
    import re
    import signal

    root = tmp_path / "root.json"
    root.write_bytes(setup.repo.root())
    env = dict(os.environ)
    env["PYTHONPATH"] = _tufc_pythonpath()
    process = subprocess.Popen(
        [sys.executable, "-m", "tufc", "proxy", *_tool_options(setup, tmp_path, root), "--port", "0"],
        env=env, stderr=subprocess.PIPE, text=True)
    try:
        lines = [process.stderr.readline()]  # "Trusting root version 1 ...", then the URL
        assert lines[0].startswith("Trusting root version 1")
        lines.append(process.stderr.readline())
        url = re.search(r"serving (http://127\.0\.0\.1:\d+/)simple/", lines[1]).group(1)
        with urllib.request.urlopen(url + "simple/alpha/") as response:
            assert f"/files/alpha/{WHEEL}" in response.read().decode()
        _tamper(setup, "packages/beta-1.0-py3-none-any.whl", b"x" * 10)
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "files/beta/beta-1.0-py3-none-any.whl")
    finally:
        process.send_signal(signal.SIGTERM)
        rest = process.stderr.read()
        assert process.wait(30) == 143
    assert "/files/beta/beta-1.0-py3-none-any.whl: length/hash check failed" in rest


def test_tufc_proxy_refuses_to_start_on_a_failed_refresh(setup, tmp_path):
    root = tmp_path / "root.json"
    root.write_bytes(setup.repo.root())
    setup.upstream.files["metadata/timestamp.json"] = b"{}"
    result = _tufc(["proxy", *_tool_options(setup, tmp_path, root), "--port", "0"])
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith(
        "tufc proxy: error: refresh: format check failed (malformed metadata)")


def test_keep_alive_across_pages_files_and_refusals(setup):
    """One connection carries pages, files, 404s and 409s (HTTP/1.1, every
    answer with its Content-Length)."""
    import http.client

    _tamper(setup, "packages/beta-1.0-py3-none-any.whl", b"x")
    host, port = setup.server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=30)
    statuses, sockets = [], set()
    for path in ["/simple/alpha/", f"/files/alpha/{WHEEL}", "/simple/nothere/",
                 "/files/beta/beta-1.0-py3-none-any.whl", "/simple/beta/"]:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        sockets.add(id(conn.sock))
    conn.close()
    assert statuses == [200, 200, 404, 409, 200]
    assert len(sockets) == 1


def test_a_client_that_resets_mid_request_leaves_no_traceback(setup, capfd):
    """uv drops connections it no longer needs: a reset while the proxy
    reads the request is the client's business, not an error to print."""
    import socket
    import struct
    import time

    host, port = setup.server.server_address[:2]
    for partial in (b"GET /simple/al", b"GET /simple/alpha/ HTTP/1.1\r\nHost: x\r\n"):
        conn = socket.create_connection((host, port), timeout=10)
        conn.sendall(partial)
        time.sleep(0.05)  # the handler is blocked reading the rest
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        conn.close()  # linger 0: a reset, not a close
    time.sleep(0.3)
    assert setup.get("simple/alpha/")[0] == 200  # still serving
    err = capfd.readouterr().err
    assert "Traceback" not in err and "ConnectionResetError" not in err
