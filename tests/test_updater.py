"""End-to-end tests of tufc.Updater: workflow, cache, fetchers, time.

Repositories are built with python-tuf (tests/repo_builder.py, an
independent producer) and served over real HTTP on 127.0.0.1
(tests/http_repo.py).  Where the behaviour is meant to be python-tuf's,
the test runs against both clients (fixture ``impl``) and expects the same
outcome and the same exception class; tests marked tufc-only cover what
python-tuf does not do (reference_time, locking, hostile names in URLs...).

The harness (``Impl``, ``Env``) is in updater_harness.py, its fixtures in
conftest.py; test_updater_attacks.py uses the same.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import multiprocessing
import os
import pathlib
import threading
import time

import pytest

import tufc.updater
from tufc import exceptions
from tufc.updater import Updater, UpdaterConfig

from tests.http_repo import ENDLESS_CAP
from tests.repo_builder import RepoBuilder
from tests.updater_harness import Env, Impl, Raises, add_delegated_target, listing

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: tufc does not lock there
    fcntl = None


# --- the workflow ------------------------------------------------------------------


def test_refresh_lookup_download(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    add_delegated_target(env)
    env.publish()
    updater = env.updater(impl)
    updater.refresh()
    for path, data in (("a/file.txt", b"file data"), ("deleg/file.txt", b"delegated data")):
        info = updater.get_targetinfo(path)
        assert info is not None and info.length == len(data)
        assert updater.find_cached_target(info) is None
        local = updater.download_target(info)
        assert pathlib.Path(local).read_bytes() == data
        assert updater.find_cached_target(info) == local
        assert local == os.path.join(str(env.target_dir), path.replace("/", "%2F"))
    assert updater.get_targetinfo("a/missing.txt") is None


def test_an_updater_refreshes_once(env, impl):
    """A second refresh, or the one get_targetinfo starts after a failed
    refresh, is a caller's bug: RuntimeError, as in python-tuf; tufc's
    message says what to do."""
    updater = env.updater(impl)
    updater.refresh()
    with pytest.raises(RuntimeError) as second:
        updater.refresh()
    env.repo.expire("snapshot")
    env.publish()
    failed = env.updater(impl)
    with Raises("ExpiredMetadataError"):
        failed.refresh()
    with pytest.raises(RuntimeError) as after_failure:
        failed.get_targetinfo("a/file.txt")
    if impl.is_tufc:
        for exc in (second.value, after_failure.value):
            assert "create a new one to refresh again" in str(exc)


def test_urls_requested(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    add_delegated_target(env)
    env.publish()
    updater = env.updater(impl)
    info = updater.get_targetinfo("deleg/file.txt")  # implicit refresh
    updater.download_target(info)
    digest = hashlib.sha256(b"delegated data").hexdigest()
    if env.repo.consistent_snapshot:
        expected = [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/2.snapshot.json",
            "/metadata/2.targets.json",
            "/metadata/1.role1.json",
            f"/targets/deleg/{digest}.file.txt",
        ]
    else:
        expected = [
            "/metadata/2.root.json",
            "/metadata/timestamp.json",
            "/metadata/snapshot.json",
            "/metadata/targets.json",
            "/metadata/role1.json",
            "/targets/deleg/file.txt",
        ]
    assert env.requests() == expected


def test_prefix_targets_with_hash_off(cenv, impl):
    cenv.repo.add_target("a/file.txt", b"file data")
    cenv.publish()
    cenv.server.files["targets/a/file.txt"] = b"file data"
    config = impl.config_cls(prefix_targets_with_hash=False)
    updater = cenv.updater(impl, config=config)
    updater.download_target(updater.get_targetinfo("a/file.txt"))
    assert cenv.requests()[-1] == "/targets/a/file.txt"


def test_metadata_dir_layout_and_exact_bytes(env, impl):
    add_delegated_target(env)
    env.repo.rotate_keys("root")
    env.publish()
    updater = env.updater(impl)
    assert updater.get_targetinfo("deleg/file.txt") is not None
    files = listing(env.metadata_dir)
    # tufc's one addition: the clock-rollback record (python-tuf ignores it)
    assert files == {
        "root.json",
        "root_history/1.root.json",
        "root_history/2.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "role1.json",
    } | ({"latest_known_time"} if impl.is_tufc else set())
    md = env.metadata_dir
    assert (md / "root.json").read_bytes() == env.repo.root_bytes(2)
    assert (md / "root_history/1.root.json").read_bytes() == env.repo.root_bytes(1)
    assert (md / "root_history/2.root.json").read_bytes() == env.repo.root_bytes(2)
    for role in ("timestamp", "snapshot", "targets", "role1"):
        assert (md / f"{role}.json").read_bytes() == env.repo.role_bytes(role)
    # python-tuf 7's layout: root.json points into root_history/
    assert os.readlink(md / "root.json") == "root_history/2.root.json"


def test_root_json_is_a_copy_without_symlinks(env, tufc_impl, monkeypatch):
    """Where symlinks are not allowed, root.json is the current root's
    bytes, written atomically."""
    env.repo.rotate_keys("root")
    env.publish()

    def no_symlink(*args, **kwargs):
        raise OSError("symlinks not permitted")

    monkeypatch.setattr(os, "symlink", no_symlink)
    updater = env.updater(tufc_impl)
    assert (env.metadata_dir / "root.json").read_bytes() == env.repo.root_bytes(1)
    updater.refresh()
    root_json = env.metadata_dir / "root.json"
    assert not root_json.is_symlink()
    assert root_json.read_bytes() == env.repo.root_bytes(2)
    assert listing(env.metadata_dir) == {
        "root.json",
        "root_history/1.root.json",
        "root_history/2.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "latest_known_time",
    }
    env.server.clear_requests()
    env.updater(tufc_impl, bootstrap=None).refresh()
    assert env.requests()[0] == "/metadata/3.root.json"


def test_metadata_dir_and_parents_created(env, impl):
    env.metadata_dir = env.tmp / "deep" / "er" / "metadata"
    env.updater(impl).refresh()
    assert (env.metadata_dir / "timestamp.json").exists()


@pytest.mark.parametrize("slash", [True, False], ids=["slash", "no-slash"])
def test_base_urls_with_or_without_slash(env, impl, slash):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    env.metadata_url = env.metadata_url.rstrip("/") + ("/" if slash else "")
    base = env.targets_url.rstrip("/") + ("/" if slash else "")
    updater = env.updater(impl, target_base_url=base)
    info = updater.get_targetinfo("a/file.txt")
    path = updater.download_target(info)
    assert pathlib.Path(path).read_bytes() == b"file data"
    other = updater.download_target(
        info, str(env.tmp / "x.txt"), target_base_url=base
    )
    assert pathlib.Path(other).read_bytes() == b"file data"


def test_cache_used_without_download(env, impl):
    add_delegated_target(env)
    env.publish()
    env.updater(impl).get_targetinfo("deleg/file.txt")
    env.server.clear_requests()
    # a new Updater over the filled cache downloads only what must be new
    updater = env.updater(impl, bootstrap=None)
    assert updater.get_targetinfo("deleg/file.txt") is not None
    assert env.requests() == ["/metadata/2.root.json", "/metadata/timestamp.json"]


def test_cache_interoperates_with_python_tuf(env, impl):
    """A cache written by one library is used by the other as is."""
    add_delegated_target(env)
    env.publish()
    writer = Impl("python-tuf" if impl.is_tufc else "tufc")
    env.updater(writer).get_targetinfo("deleg/file.txt")
    env.server.clear_requests()
    assert env.updater(impl, bootstrap=None).get_targetinfo("deleg/file.txt")
    assert env.requests() == ["/metadata/2.root.json", "/metadata/timestamp.json"]


def test_new_versions_replace_cache(env, impl):
    add_delegated_target(env)
    env.publish()
    env.updater(impl).get_targetinfo("deleg/file.txt")
    env.repo.add_target("deleg/new.txt", b"new", role="role1")
    env.publish()
    updater = env.updater(impl, bootstrap=None)
    assert updater.get_targetinfo("deleg/new.txt") is not None
    for role in ("timestamp", "snapshot", "targets", "role1"):
        data = (env.metadata_dir / f"{role}.json").read_bytes()
        assert data == env.repo.role_bytes(role)


def test_bootstrap_none_uses_cached_root(env, impl):
    env.repo.rotate_keys("root")
    env.publish()
    env.updater(impl).refresh()
    env.server.clear_requests()
    env.updater(impl, bootstrap=None).refresh()
    assert env.requests()[0] == "/metadata/3.root.json"


def test_bootstrap_none_without_cache_fails(env, impl):
    expected = exceptions.StorageError if impl.is_tufc else OSError
    with pytest.raises(expected):
        env.updater(impl, bootstrap=None)


def test_bootstrap_omitted_means_cache_with_warning(env, tufc_impl):
    env.updater(tufc_impl).refresh()
    with pytest.warns(DeprecationWarning):
        updater = Updater(str(env.metadata_dir), env.metadata_url)
    updater.refresh()


def test_invalid_bootstrap_root(env, impl):
    with Raises("UnsignedMetadataError"):
        env.updater(impl, bootstrap=env.repo.root_bytes(1).replace(b'"1.0.31"', b'"1.0.30"'))
    with Raises("DeserializationError"):
        env.updater(impl, bootstrap=b"{not json")


def test_bootstrap_of_wrong_type(env, tufc_impl):
    with pytest.raises(TypeError):
        env.updater(tufc_impl, bootstrap=env.trusted_root.decode())
    assert not env.metadata_dir.exists()


def test_bootstrap_root_written_to_history(env, impl):
    env.updater(impl)
    assert (env.metadata_dir / "root_history/1.root.json").read_bytes() == env.trusted_root
    assert (env.metadata_dir / "root.json").read_bytes() == env.trusted_root


def test_unsupported_envelope_type(env, tufc_impl):
    config = UpdaterConfig(envelope_type=tufc.config.EnvelopeType.SIMPLE)
    with pytest.raises(ValueError):
        env.updater(tufc_impl, config=config)


def test_config_defaults_match_python_tuf():
    from tuf.ngclient import UpdaterConfig as TufConfig

    ours, theirs = UpdaterConfig(), TufConfig()
    for name in vars(theirs):
        if name == "envelope_type":
            assert ours.envelope_type.name == theirs.envelope_type.name
        else:
            assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.reference_time is None


# --- wrong argument types ---------------------------------------------------------------

WRONG_PATHS = [None, 42, b"pkg/x", 1.5, ["pkg/x"], pathlib.PurePosixPath("pkg/x")]


@pytest.fixture(params=["delegation", "hash bins"])
def benv(request, env) -> Env:
    """A repository with an ordinary delegation or with hash bins; the
    delegated target's path is ``benv.found``."""
    if request.param == "delegation":
        add_delegated_target(env)
        env.found = "deleg/file.txt"
    else:
        env.repo.add_succinct_roles("targets", 2, "bin")
        env.repo.add_target("pkg/x", b"x", role=env.repo.bin_for("targets", "pkg/x"))
        env.found = "pkg/x"
    env.publish()
    return env


@pytest.mark.parametrize("target_path", WRONG_PATHS, ids=repr)
def test_get_targetinfo_wrong_type(benv, tufc_impl, target_path):
    """A TypeError naming the argument and the type expected, raised before
    anything is downloaded (also before the refresh get_targetinfo starts)."""
    for refresh_first in (False, True):
        updater = benv.updater(tufc_impl)
        if refresh_first:
            updater.refresh()
        benv.server.clear_requests()
        with pytest.raises(TypeError, match=r"target_path must be a str, not "):
            updater.get_targetinfo(target_path)
        assert benv.requests() == []
        assert updater.get_targetinfo(benv.found).path == benv.found


def test_valid_lookups_unchanged_by_the_checks(benv, tufc_impl):
    updater = benv.updater(tufc_impl)
    assert updater.get_targetinfo(benv.found).path == benv.found
    assert updater.get_targetinfo("pkg/absent") is None
    assert updater.get_targetinfo("") is None


@pytest.mark.parametrize("method", ["download_target", "find_cached_target"])
@pytest.mark.parametrize("targetinfo", [None, "a/file.txt", {"length": 1}], ids=repr)
def test_targetinfo_wrong_type(env, tufc_impl, method, targetinfo):
    updater = env.updater(tufc_impl)
    with pytest.raises(TypeError, match=r"targetinfo must be a TargetFile"):
        getattr(updater, method)(targetinfo)


@pytest.mark.parametrize("method", ["download_target", "find_cached_target"])
@pytest.mark.parametrize("filepath", [42, b"/tmp/x", ["x"]], ids=repr)
def test_filepath_wrong_type(env, tufc_impl, method, filepath):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = env.updater(tufc_impl)
    info = updater.get_targetinfo("a/file.txt")
    with pytest.raises(TypeError, match=r"filepath must be a str or os.PathLike or None, not "):
        getattr(updater, method)(info, filepath)


def test_download_target_base_url_wrong_type(env, tufc_impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = env.updater(tufc_impl)
    info = updater.get_targetinfo("a/file.txt")
    with pytest.raises(TypeError, match=r"target_base_url must be a str or None, not bytes"):
        updater.download_target(info, target_base_url=env.targets_url.encode())
    assert not env.target_dir.exists()


def test_pathlike_arguments_still_accepted(env, tufc_impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = Updater(
        env.metadata_dir, env.metadata_url, env.target_dir, env.targets_url,
        bootstrap=env.trusted_root,
    )
    info = updater.get_targetinfo("a/file.txt")
    dest = env.tmp / "out.txt"
    assert updater.download_target(info, dest) == str(dest)
    assert updater.find_cached_target(info, dest) == str(dest)


@pytest.mark.parametrize(
    "argument, value, expected",
    [
        ("metadata_dir", None, "a str or os.PathLike"),
        ("metadata_dir", b"/tmp/md", "a str or os.PathLike"),
        ("metadata_base_url", None, "a str"),
        ("metadata_base_url", b"http://x/", "a str"),
        ("target_dir", 42, "a str or os.PathLike or None"),
        ("target_base_url", 42, "a str or None"),
        ("fetcher", "urllib3", "a FetcherInterface or None"),
        ("config", {"max_delegations": 2}, "an UpdaterConfig or None"),
    ],
)
def test_constructor_wrong_types(env, argument, value, expected):
    kwargs = {
        "metadata_dir": str(env.metadata_dir),
        "metadata_base_url": env.metadata_url,
        "target_dir": str(env.target_dir),
        "target_base_url": env.targets_url,
        "bootstrap": env.trusted_root,
        argument: value,
    }
    with pytest.raises(TypeError, match=f"{argument} must be {expected}, not "):
        Updater(**kwargs)
    assert not env.metadata_dir.exists()


def test_python_tuf_config_refused(env, tufc_impl):
    """python-tuf's UpdaterConfig lacks tufc's fields: a TypeError saying
    so (it was an AttributeError from deep inside)."""
    from tuf.ngclient import UpdaterConfig as TufConfig

    with pytest.raises(TypeError, match="config must be an UpdaterConfig or None"):
        env.updater(tufc_impl, config=TufConfig())


# --- targets ------------------------------------------------------------------------


def test_tampered_target(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    name = env.repo.target_name("a/file.txt")
    env.server.files["targets/" + name] = b"file dat4"
    updater = env.updater(impl)
    info = updater.get_targetinfo("a/file.txt")
    existing = env.target_dir / "a%2Ffile.txt"
    existing.parent.mkdir(parents=True)
    existing.write_bytes(b"older")
    with Raises("LengthOrHashMismatchError"):
        updater.download_target(info)
    assert listing(env.target_dir) == {"a%2Ffile.txt"}  # no temp file left
    assert existing.read_bytes() == b"older"  # untouched


def test_short_target(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    env.server.files["targets/" + env.repo.target_name("a/file.txt")] = b"file"
    updater = env.updater(impl)
    with Raises("LengthOrHashMismatchError"):
        updater.download_target(updater.get_targetinfo("a/file.txt"))
    assert not env.target_dir.exists() or listing(env.target_dir) == set()


def test_endless_target(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    name = "targets/" + env.repo.target_name("a/file.txt")
    env.server.endless.add(name)
    updater = env.updater(impl)
    with Raises("DownloadLengthMismatchError"):
        updater.download_target(updater.get_targetinfo("a/file.txt"))
    assert env.server.sent[name] < ENDLESS_CAP // 4
    assert not env.target_dir.exists() or listing(env.target_dir) == set()


def test_cached_target_changed_on_disk(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = env.updater(impl)
    info = updater.get_targetinfo("a/file.txt")
    path = updater.download_target(info)
    assert updater.find_cached_target(info) == path
    pathlib.Path(path).write_bytes(b"file dat4")
    assert updater.find_cached_target(info) is None
    pathlib.Path(path).write_bytes(b"file data and more")
    assert updater.find_cached_target(info) is None
    os.remove(path)
    assert updater.find_cached_target(info) is None


def test_find_cached_target_with_filepath(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = env.updater(impl)
    info = updater.get_targetinfo("a/file.txt")
    dest = env.tmp / "elsewhere" / "f"
    assert updater.download_target(info, str(dest)) == str(dest)
    assert updater.find_cached_target(info, str(dest)) == str(dest)


def test_target_dir_or_base_url_missing(env, impl):
    env.repo.add_target("a/file.txt", b"file data")
    env.publish()
    updater = env.updater(impl, target_dir=None, target_base_url=None)
    info = updater.get_targetinfo("a/file.txt")
    with pytest.raises(ValueError):
        updater.find_cached_target(info)
    with pytest.raises(ValueError):
        updater.download_target(info, str(env.tmp / "f"))


@pytest.mark.parametrize("algorithm", ["xyz-256", "sha3-256"])
def test_unknown_hash_algorithm_fails_closed(env, impl, algorithm):
    """An algorithm the client does not implement is a failure, never a
    skipped check. (python-tuf implements sha3-256 through hashlib; tufc
    supports sha256/384/512 and blake2b only: fails closed.)"""
    env.repo.add_target("a/file.txt", b"file data")
    target = env.repo.md["targets"].signed.targets["a/file.txt"]
    target.hashes = {algorithm: hashlib.sha3_256(b"file data").hexdigest()}
    env.repo.bump("targets")
    env.publish()
    env.server.files["targets/a/file.txt"] = b"file data"
    env.server.files[
        f"targets/a/{target.hashes[algorithm]}.file.txt"
    ] = b"file data"
    updater = env.updater(impl)
    info = updater.get_targetinfo("a/file.txt")
    if algorithm == "sha3-256" and not impl.is_tufc:
        # python-tuf hashes sha3-256 through hashlib: the download succeeds.
        assert pathlib.Path(updater.download_target(info)).read_bytes() == b"file data"
        return
    with Raises("LengthOrHashMismatchError"):
        updater.download_target(info)
    assert updater.find_cached_target(info, str(env.tmp / "a")) is None


def test_every_listed_hash_is_checked(env, impl):
    data = b"file data"
    env.repo.add_target("a/file.txt", data)
    target = env.repo.md["targets"].signed.targets["a/file.txt"]
    target.hashes["sha512"] = hashlib.sha512(b"other").hexdigest()
    env.repo.bump("targets")
    env.publish()
    updater = env.updater(impl)
    with Raises("LengthOrHashMismatchError"):
        updater.download_target(updater.get_targetinfo("a/file.txt"))


def test_target_path_needing_quoting(env, tufc_impl):
    """Characters with a meaning in URLs are sent percent-encoded (python-tuf
    puts the path in the URL as is, so "?" and "#" cut it short)."""
    path = "dir/a b?c#d%20.txt"
    env.repo.add_target(path, b"odd name")
    env.publish()
    updater = env.updater(tufc_impl)
    local = updater.download_target(updater.get_targetinfo(path))
    assert pathlib.Path(local).read_bytes() == b"odd name"
    assert env.server.requests[-1].raw_path.startswith("/targets/dir/")
    assert "%3Fc%23d%2520.txt" in env.server.requests[-1].raw_path



@pytest.mark.parametrize("path", ["../evil.txt", "a/../../evil.txt", "./../evil.txt", "a/../b.txt"])
def test_dot_dot_segments_are_refused(env, tufc_impl, path):
    """A signed target path with a ".." segment is not downloaded: no
    encoding keeps it under the targets base URL (RFC 3986 makes "%2E%2E"
    the same segment as "..", and servers resolve it after decoding: see
    test_dot_dot_segment_encoded_still_climbs_out), so nothing is
    requested and nothing is written."""
    env.repo.add_target(path, b"signed data")
    env.publish()
    updater = env.updater(tufc_impl)
    info = updater.get_targetinfo(path)
    assert info is not None and info.path == path  # the lookup still answers
    env.server.clear_requests()
    with pytest.raises(exceptions.RepositoryError, match=r"'\.\.' segment") as caught:
        updater.download_target(info)
    assert type(caught.value) is exceptions.RepositoryError
    assert path in str(caught.value)
    assert env.requests() == []
    assert not env.target_dir.exists() or listing(env.target_dir) == set()
    with pytest.raises(exceptions.RepositoryError):
        updater.download_targets([info])
    assert env.requests() == []


def test_dot_dot_segment_encoded_still_climbs_out(tmp_path):
    """Why ".." is refused rather than sent as "%2E%2E": the standard
    library's static file server (python -m http.server) decodes the path,
    then resolves its dot segments, and serves the file outside the folder."""
    import http.server
    import threading
    import urllib.request

    root = tmp_path / "www"
    (root / "targets").mkdir(parents=True)
    (root / "outside.txt").write_bytes(b"outside")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            url = f"http://127.0.0.1:{server.server_address[1]}/targets/%2E%2E/outside.txt"
            with urllib.request.urlopen(url, timeout=10) as response:
                assert response.read() == b"outside"
        finally:
            server.shutdown()


def test_dot_segments_are_sent_encoded(env, tufc_impl):
    """A "." segment cannot climb: it is sent encoded, and the target is
    downloaded from under the targets base URL."""
    path = "a/./x.txt"
    env.repo.add_target(path, b"signed data")
    env.publish()
    updater = env.updater(tufc_impl)
    local = updater.download_target(updater.get_targetinfo(path))
    assert pathlib.Path(local).read_bytes() == b"signed data"
    assert pathlib.Path(local).parent == env.target_dir
    raw = env.server.requests[-1].raw_path
    assert raw.startswith("/targets/a/%2E/") and "/./" not in raw

# --- fetchers -------------------------------------------------------------------------


def test_default_fetcher_is_looked_up_at_construction(env, monkeypatch):
    made = []

    class Recording(tufc.fetcher.Urllib3Fetcher):
        def __init__(self, **kwargs):
            made.append(kwargs)
            super().__init__(**kwargs)

    monkeypatch.setattr(tufc.updater, "Urllib3Fetcher", Recording)
    config = UpdaterConfig(app_user_agent="MyApp/3")
    env.updater(Impl("tufc"), config=config).refresh()
    assert made == [{"app_user_agent": "MyApp/3"}]
    agent = env.server.requests[-1].headers["User-Agent"]
    assert agent == f"MyApp/3 tufc/{tufc.__version__}"


def test_python_tuf_fetcher_subclass_works_unchanged(env):
    """A fetcher written for python-tuf (only ``_fetch``, python-tuf's
    exceptions) drives tufc's Updater."""
    import urllib.error
    import urllib.request

    from tuf.api import exceptions as tuf_exceptions
    from tuf.ngclient import FetcherInterface as TufFetcherInterface

    class UrllibFetcher(TufFetcherInterface):
        def __init__(self):
            self.urls = []

        def _fetch(self, url):
            self.urls.append(url)
            try:
                response = urllib.request.urlopen(url, timeout=10)
            except urllib.error.HTTPError as e:
                raise tuf_exceptions.DownloadHTTPError(str(e), e.code) from e
            return iter(lambda: response.read(1000), b"")

    add_delegated_target(env)
    env.publish()
    fetcher = UrllibFetcher()
    updater = env.updater(Impl("tufc"), fetcher=fetcher)
    info = updater.get_targetinfo("deleg/file.txt")  # root chain ends on 404
    assert pathlib.Path(updater.download_target(info)).read_bytes() == b"delegated data"
    assert fetcher.urls[0].endswith("/2.root.json")

    env.server.errors["metadata/timestamp.json"] = 500
    with Raises("DownloadHTTPError") as caught:
        env.updater(Impl("tufc"), fetcher=UrllibFetcher()).refresh()
    assert caught.value.status_code == 500
    assert isinstance(caught.value, exceptions.DownloadError)


def test_fetcher_errors_become_download_errors(env):
    class Broken(tufc.fetcher.FetcherInterface):
        def _fetch(self, url):
            yield b"{"
            raise KeyError("deep inside")

    with pytest.raises(exceptions.DownloadError):
        env.updater(Impl("tufc"), fetcher=Broken()).refresh()


def test_file_urls(tmp_path):
    """file:// base URLs are read from a local mirror (tufc's default
    fetcher; python-tuf's urllib3 fetcher cannot, so tufc only)."""
    repo = RepoBuilder(consistent_snapshot=True)
    repo.add_target("a/file.txt", b"file data")
    repo.add_delegation("targets", "../x", paths=["deleg/*"])
    repo.add_target("deleg/f", b"delegated", role="../x")
    repo.publish()
    mirror = repo.write(tmp_path / "mirror")
    updater = Updater(
        str(tmp_path / "md"),
        (mirror / "metadata").as_uri(),
        str(tmp_path / "t"),
        (mirror / "targets").as_uri(),
        bootstrap=repo.root_bytes(1),
    )
    for path, data in (("a/file.txt", b"file data"), ("deleg/f", b"delegated")):
        info = updater.get_targetinfo(path)
        assert pathlib.Path(updater.download_target(info)).read_bytes() == data
    assert "..%2Fx.json" in listing(tmp_path / "md")


# --- time -----------------------------------------------------------------------------


def _fake_datetime(when: datetime.datetime, calls: list):
    class FakeDatetime(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            calls.append(tz)
            return when if tz is None else when.astimezone(tz)

    return FakeDatetime


def test_substituted_datetime_moves_reference_time(env, impl, monkeypatch):
    later = datetime.datetime(2100, 1, 1, tzinfo=datetime.timezone.utc)
    monkeypatch.setattr(datetime, "datetime", _fake_datetime(later, []))
    updater = env.updater(impl)
    with Raises("ExpiredMetadataError"):
        updater.refresh()


def test_reference_time_read_once_per_refresh(env, tufc_impl, monkeypatch):
    add_delegated_target(env)
    env.publish()
    calls = []
    now = datetime.datetime.now(datetime.timezone.utc)
    monkeypatch.setattr(datetime, "datetime", _fake_datetime(now, calls))
    updater = env.updater(tufc_impl)
    calls.clear()
    updater.refresh()
    assert updater.get_targetinfo("deleg/file.txt") is not None
    assert len(calls) == 1 and calls[0] is not None  # aware: UTC


def test_reference_time_in_config(env, tufc_impl):
    env.repo.expire("targets", datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc))
    env.publish()
    before = datetime.datetime(2029, 12, 31, 23, 59, 59, tzinfo=datetime.timezone.utc)
    config = UpdaterConfig(reference_time=before)
    env.updater(tufc_impl, config=config).refresh()
    at = datetime.datetime(2030, 1, 1, tzinfo=datetime.timezone.utc)
    with Raises("ExpiredMetadataError"):
        env.updater(tufc_impl, config=UpdaterConfig(reference_time=at)).refresh()


def test_reference_time_must_be_aware(env, tufc_impl):
    naive = datetime.datetime(2030, 1, 1)
    with pytest.raises(ValueError):
        env.updater(tufc_impl, config=UpdaterConfig(reference_time=naive))


# --- concurrency ------------------------------------------------------------------------


@pytest.mark.skipif(fcntl is None, reason="no flock on this platform")
def test_refresh_holds_lock_on_metadata_dir(env, tufc_impl):
    """An update waits while another process holds metadata_dir's lock."""
    updater = env.updater(tufc_impl)
    fd = os.open(env.metadata_dir, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        worker = threading.Thread(target=updater.refresh)
        worker.start()
        time.sleep(0.3)
        assert worker.is_alive()
        assert env.requests() == []
        fcntl.flock(fd, fcntl.LOCK_UN)
        worker.join(10)
        assert not worker.is_alive()
    finally:
        os.close(fd)
    assert "/metadata/timestamp.json" in env.requests()


def _refresh_worker(metadata_dir, metadata_url, trusted_root, rounds, errors):
    import tufc.updater as updater_module

    for _ in range(rounds):
        try:
            updater = updater_module.Updater(
                metadata_dir, metadata_url, bootstrap=trusted_root
            )
            if updater.get_targetinfo("deleg/file.txt") is None:
                errors.put("target not found")
        except Exception as exc:  # reported to the parent
            errors.put(repr(exc))


def test_concurrent_refreshes_share_metadata_dir(cenv):
    """Several processes refresh the same metadata_dir while the repository
    publishes new versions: none fails, and the folder ends valid with
    nothing extra in it.  (Consistent snapshots: without them a repository
    cannot publish while clients read -- a client may fetch a snapshot, then
    a role file the next publication already replaced -- which is the
    repository's race, not the client's.)"""
    env = cenv
    add_delegated_target(env)
    env.publish()
    ctx = multiprocessing.get_context("spawn")
    errors = ctx.Queue()
    args = (str(env.metadata_dir), env.metadata_url, env.trusted_root, 6, errors)
    workers = [ctx.Process(target=_refresh_worker, args=args) for _ in range(3)]
    for worker in workers:
        worker.start()
    for _ in range(3):
        time.sleep(0.2)
        env.repo.add_target("deleg/file.txt", os.urandom(8), role="role1")
        env.publish()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    assert listing(env.metadata_dir) == {
        "root.json",
        "root_history/1.root.json",
        "timestamp.json",
        "snapshot.json",
        "targets.json",
        "role1.json",
        "latest_known_time",
    }
    # the folder is a valid cache for the latest (or a recent) state
    updater = Updater(str(env.metadata_dir), env.metadata_url, bootstrap=None)
    assert updater.get_targetinfo("deleg/file.txt") is not None
