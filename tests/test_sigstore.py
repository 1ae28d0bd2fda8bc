"""Real data: Sigstore's root of trust (../shared/testdata/sigstore-root-signing).

The files are served under their published names (consistent snapshots
from root 5 on: ``165.snapshot.json``, ``14.targets.json``, hash-prefixed
targets) and the client walks the whole root chain 1 -> 15 "as of"
2026-08-22, before the timestamp (2026-08-28) and root 15 (2026-11-20)
expire.  Roots 1-4 use hex ECDSA points and RFC 3339 dates with offsets,
which python-tuf cannot read, so this runs on tufc only.  Skipped cleanly
when the shared test data is absent.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import pathlib

import pytest

from tufc.updater import Updater, UpdaterConfig

from tests.conftest import shared_testdata
from tests.http_repo import HttpRepo

AS_OF = datetime.datetime(2026, 8, 22, tzinfo=datetime.timezone.utc)


@pytest.fixture(scope="module")
def sigstore() -> pathlib.Path:
    return shared_testdata("sigstore-root-signing")


def _signed(path: pathlib.Path) -> dict:
    return json.loads(path.read_bytes())["signed"]


def published_files(data: pathlib.Path) -> dict[str, bytes]:
    """The repository as its web site publishes it, keyed by URL path."""
    files = {}
    for path in sorted((data / "root_history").glob("*.root.json")):
        files["metadata/" + path.name] = path.read_bytes()
    files["metadata/timestamp.json"] = (data / "timestamp.json").read_bytes()
    timestamp = _signed(data / "timestamp.json")
    snapshot_version = timestamp["meta"]["snapshot.json"]["version"]
    files[f"metadata/{snapshot_version}.snapshot.json"] = (
        data / "snapshot.json"
    ).read_bytes()
    snapshot = _signed(data / "snapshot.json")
    for role in ("targets", "registry.npmjs.org"):
        version = snapshot["meta"][f"{role}.json"]["version"]
        files[f"metadata/{version}.{role}.json"] = (data / f"{role}.json").read_bytes()
    for path, info in all_targets(data).items():
        digest = next(iter(info["hashes"].values()))
        dirname, sep, basename = path.rpartition("/")
        content = (data / "targets" / path).read_bytes()
        files[f"targets/{dirname}{sep}{digest}.{basename}"] = content
    return files


def all_targets(data: pathlib.Path) -> dict[str, dict]:
    """Every target path with its length and hashes, from the metadata
    (top-level and the delegated registry.npmjs.org role)."""
    found = dict(_signed(data / "targets.json")["targets"])
    found.update(_signed(data / "registry.npmjs.org.json")["targets"])
    return found


@pytest.fixture
def served(sigstore):
    with HttpRepo(published_files(sigstore)) as server:
        yield server


def make_updater(tmp_path, server, bootstrap, when=AS_OF, **kw):
    return Updater(
        str(tmp_path / "metadata"),
        server.url + "metadata/",
        str(tmp_path / "targets"),
        server.url + "targets/",
        config=UpdaterConfig(reference_time=when, **kw),
        bootstrap=bootstrap,
    )


def test_full_root_chain_and_every_target(tmp_path, sigstore, served):
    updater = make_updater(
        tmp_path, served, (sigstore / "root_history/1.root.json").read_bytes()
    )
    updater.refresh()
    metadata = tmp_path / "metadata"
    assert (metadata / "root.json").read_bytes() == (sigstore / "root.json").read_bytes()
    for version in range(1, 16):
        name = f"root_history/{version}.root.json"
        assert (metadata / name).read_bytes() == (sigstore / name).read_bytes()
    assert served.count("metadata/16.root.json") == 1
    assert served.count("metadata/165.snapshot.json") == 1
    assert served.count("metadata/14.targets.json") == 1

    targets = all_targets(sigstore)
    assert "registry.npmjs.org/keys.json" in targets and len(targets) == 12
    for path, expected in targets.items():
        info = updater.get_targetinfo(path)
        assert info is not None, path
        assert info.length == expected["length"]
        assert info.hashes == expected["hashes"]
        local = updater.download_target(info)
        content = pathlib.Path(local).read_bytes()
        assert content == (sigstore / "targets" / path).read_bytes()
        assert hashlib.sha256(content).hexdigest() == expected["hashes"]["sha256"]
        assert updater.find_cached_target(info) == local
    assert served.count("metadata/8.registry.npmjs.org.json") == 1
    assert (metadata / "registry.npmjs.org.json").read_bytes() == (
        sigstore / "registry.npmjs.org.json"
    ).read_bytes()
    assert updater.get_targetinfo("registry.npmjs.org/absent") is None


def test_cache_reused_without_downloads(tmp_path, sigstore, served):
    root1 = (sigstore / "root_history/1.root.json").read_bytes()
    make_updater(tmp_path, served, root1).get_targetinfo("registry.npmjs.org/keys.json")
    served.clear_requests()
    updater = make_updater(tmp_path, served, root1)
    assert updater.get_targetinfo("registry.npmjs.org/keys.json") is not None
    assert served.paths_requested() == [
        "/metadata/16.root.json",
        "/metadata/timestamp.json",
    ]


def test_bootstrap_from_latest_root(tmp_path, sigstore, served):
    updater = make_updater(tmp_path, served, (sigstore / "root.json").read_bytes())
    assert updater.get_targetinfo("trusted_root.json") is not None
    assert served.paths_requested()[0] == "/metadata/16.root.json"


def test_expired_after_timestamp_expiry(tmp_path, sigstore, served):
    from tufc.exceptions import ExpiredMetadataError

    later = datetime.datetime(2026, 8, 29, tzinfo=datetime.timezone.utc)
    updater = make_updater(
        tmp_path, served, (sigstore / "root_history/1.root.json").read_bytes(), later
    )
    with pytest.raises(ExpiredMetadataError):
        updater.refresh()


def test_file_mirror(tmp_path, sigstore):
    """The same repository read from a local mirror through file:// URLs."""
    mirror = tmp_path / "mirror"
    for name, data in published_files(sigstore).items():
        path = mirror / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    updater = Updater(
        str(tmp_path / "metadata"),
        (mirror / "metadata").as_uri(),
        str(tmp_path / "targets"),
        (mirror / "targets").as_uri() + "/",
        config=UpdaterConfig(reference_time=AS_OF),
        bootstrap=(sigstore / "root_history/1.root.json").read_bytes(),
    )
    info = updater.get_targetinfo("registry.npmjs.org/keys.json")
    content = pathlib.Path(updater.download_target(info)).read_bytes()
    assert content == (sigstore / "targets/registry.npmjs.org/keys.json").read_bytes()
