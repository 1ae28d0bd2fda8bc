"""``UpdaterConfig(offline=True)``: the cached metadata, verified again from
the trusted root as a download would be, and no network at all.

Every offline Updater here gets a fetcher that fails the test on any call;
the cache is filled first by an online Updater from a repository built
with python-tuf.
"""

from __future__ import annotations

import datetime
import json

import pytest

from tufc import exceptions
from tufc.fetcher import FetcherInterface
from tufc.updater import UpdaterConfig

from tests.repo_builder import DEFAULT_EXPIRY
from tests.updater_harness import Env

PATH, DATA = "pkg/file.txt", b"the file's data"
OTHER = "pkg/other.txt"


class NoNetwork(FetcherInterface):
    """A fetcher for an Updater that must not use it."""

    def __init__(self):
        self.calls = []

    def _fetch(self, url):
        self.calls.append(url)
        raise AssertionError(f"offline Updater fetched {url}")


def _filled(env: Env, tufc_impl, expire=None) -> str:
    """A repository with hash bins and two targets in different bins; the
    cache holds the top-level roles and PATH's bin only.  The bin name.
    ``expire``: (role or "bin", when) to expire one role before the others."""
    env.repo.add_succinct_roles("targets", 2, "bin")
    bin_name = env.repo.bin_for("targets", PATH)
    env.repo.add_target(PATH, DATA, role=bin_name)
    other = env.repo.bin_for("targets", OTHER)
    assert other != bin_name
    env.repo.add_target(OTHER, b"other", role=other)
    if expire is not None:
        role, when = expire
        env.repo.expire(bin_name if role == "bin" else role, when)
    env.publish()
    online = env.updater(tufc_impl)
    online.refresh()
    online.download_target(online.get_targetinfo(PATH))
    return bin_name


def _offline(env, tufc_impl, **config):
    fetcher = NoNetwork()
    updater = env.updater(tufc_impl, fetcher=fetcher, config=UpdaterConfig(offline=True, **config))
    return updater, fetcher


def test_offline_answers_from_the_cache_without_the_network(env, tufc_impl):
    _filled(env, tufc_impl)
    online = env.updater(tufc_impl)
    expected = online.get_targetinfo(PATH)
    env.server.clear_requests()

    updater, fetcher = _offline(env, tufc_impl)
    updater.refresh()
    info = updater.get_targetinfo(PATH)
    assert (info.path, info.length, info.hashes) == (expected.path, expected.length, expected.hashes)
    assert updater.get_targetinfos([PATH]) == [info]
    assert updater.find_cached_target(info) is not None
    assert fetcher.calls == [] and env.requests() == []


def test_offline_refuses_what_the_cache_does_not_hold(env, tufc_impl):
    _filled(env, tufc_impl)
    updater, fetcher = _offline(env, tufc_impl)
    with pytest.raises(exceptions.OfflineError, match="bin"):
        updater.get_targetinfo(OTHER)  # its bin was never fetched
    info = updater.get_targetinfo(PATH)
    with pytest.raises(exceptions.OfflineError):
        updater.download_target(info, filepath=str(env.tmp / "elsewhere"))
    assert fetcher.calls == []

    (env.metadata_dir / "snapshot.json").unlink()
    updater, fetcher = _offline(env, tufc_impl)
    with pytest.raises(exceptions.OfflineError, match="snapshot"):
        updater.refresh()
    assert fetcher.calls == []


def test_offline_with_an_empty_cache(env, tufc_impl):
    updater, fetcher = _offline(env, tufc_impl)
    with pytest.raises(exceptions.OfflineError, match="timestamp"):
        updater.refresh()
    assert fetcher.calls == []


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "bin"])
def test_offline_refuses_expired_metadata(env, tufc_impl, role):
    """Only the role under test expires (a year before the others)."""
    expires = DEFAULT_EXPIRY - datetime.timedelta(days=365)
    bin_name = _filled(env, tufc_impl, expire=(role, expires))
    name = bin_name if role == "bin" else role
    later = expires + datetime.timedelta(seconds=1)
    updater, fetcher = _offline(env, tufc_impl, reference_time=later)
    with pytest.raises(exceptions.ExpiredMetadataError, match=name):
        updater.get_targetinfo(PATH)
    assert fetcher.calls == []
    # the moment before, all is valid
    updater, _ = _offline(env, tufc_impl, reference_time=expires - datetime.timedelta(seconds=1))
    assert updater.get_targetinfo(PATH).length == len(DATA)


def _resign_changed(data: bytes) -> bytes:
    """The metadata with a field changed and the signatures kept."""
    md = json.loads(data)
    md["signed"]["expires"] = "2199-01-01T00:00:00Z"
    return json.dumps(md).encode()


@pytest.mark.parametrize("role", ["timestamp", "snapshot", "targets", "bin"])
def test_offline_reverifies_every_cached_file(env, tufc_impl, role):
    """A cached file changed after it was verified is refused (signatures
    for all; the snapshot's and the bins' hashes are checked too)."""
    bin_name = _filled(env, tufc_impl)
    name = bin_name if role == "bin" else role
    path = env.metadata_dir / f"{name}.json"
    path.write_bytes(_resign_changed(path.read_bytes()))
    updater, fetcher = _offline(env, tufc_impl)
    with pytest.raises(exceptions.RepositoryError):
        updater.get_targetinfo(PATH)
    assert fetcher.calls == []


@pytest.mark.parametrize("role", ["snapshot", "bin"])
def test_offline_checks_the_hashes_the_metadata_lists(tmp_path, server, tufc_impl, role):
    """A cached snapshot or bin replaced by another one of the same version,
    validly signed (a repository that re-signed it, or a mix-and-match
    attack): refused by the timestamp's or the snapshot's hashes."""
    env = Env(tmp_path, server, meta_hashes=True)
    bin_name = _filled(env, tufc_impl)
    name = bin_name if role == "bin" else role
    env.repo.md[name].signed.unrecognized_fields["note"] = "re-signed"
    (env.metadata_dir / f"{name}.json").write_bytes(env.repo.sign(name))
    updater, fetcher = _offline(env, tufc_impl)
    with pytest.raises(exceptions.LengthOrHashMismatchError):
        updater.get_targetinfo(PATH)
    assert fetcher.calls == []


def test_offline_follows_the_cached_root_chain(env, tufc_impl):
    _filled(env, tufc_impl)
    env.repo.rotate_keys("snapshot")
    env.publish()
    env.updater(tufc_impl).refresh()  # caches root 2 and the new snapshot
    updater, fetcher = _offline(env, tufc_impl)
    updater.refresh()
    assert updater._trusted_set.root.version == 2
    assert updater.get_targetinfo(PATH).length == len(DATA)
    assert fetcher.calls == []


def test_offline_is_checked(env, tufc_impl):
    with pytest.raises(ValueError):
        env.updater(tufc_impl, config=UpdaterConfig(offline="yes"))
