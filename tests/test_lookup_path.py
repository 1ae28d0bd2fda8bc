"""The shortcuts on the Updater's lookup path give the answers of the
general code they stand in for (oracles: urllib, python-tuf, securesystemslib,
the bytes written)."""

from __future__ import annotations

import json
import os
import threading
import urllib.parse
from datetime import datetime, timezone

from hypothesis import given
from hypothesis import strategies as st
from securesystemslib.formats import encode_canonical

from tufc import updater as updater_module
from tufc._trusted import TrustedMetadataSet
from tufc.metadata import Metadata, TargetFile

from tests.repo_builder import RepoBuilder


# Lone surrogates excluded: they cannot be encoded (urllib raises too), and
# both loaders refuse them in metadata, so no role name holds one.
@given(st.text(st.characters(max_codepoint=0x7F) | st.characters(blacklist_categories=("Cs",)),
               max_size=40))
def test_role_quoting_matches_urllib(name):
    assert updater_module._quote_role(name) == urllib.parse.quote(name, safe="")
    assert updater_module._role_file(name) == urllib.parse.quote(name, safe="") + ".json"


def test_role_quoting_of_every_ascii_character_in_a_plain_name():
    # the shortcut skips quote() for whole names of some characters only
    for code in range(128):
        for name in (chr(code), f"bins-{chr(code)}", f"{chr(code)}a0"):
            assert updater_module._quote_role(name) == urllib.parse.quote(name, safe=""), name


@given(size=st.integers(0, 200_000), slack=st.integers(-3, 3))
def test_read_at_most_reads_a_file_up_to_the_limit(tmp_path_factory, size, slack):
    data = os.urandom(size)
    path = tmp_path_factory.mktemp("read") / "f"
    path.write_bytes(data)
    limit = max(1, size + slack)
    fd = os.open(path, os.O_RDONLY)
    try:
        got = updater_module._read_at_most(fd, limit)
    finally:
        os.close(fd)
    assert got == data[:limit]


def test_read_at_most_does_not_trust_the_size_hint():
    # a pipe reports size 0, and its data arrives in several pieces
    read_end, write_end = os.pipe()
    data = os.urandom(300_000)

    def feed():
        try:
            with os.fdopen(write_end, "wb") as out:
                for i in range(0, len(data), 70_000):
                    out.write(data[i:i + 70_000])
                    out.flush()
        except BrokenPipeError:
            pass  # the reader stopped at its limit

    writer = threading.Thread(target=feed)
    writer.start()
    try:
        got = updater_module._read_at_most(read_end, 250_001)
    finally:
        os.close(read_end)
        writer.join()
    assert got == data[:250_001]


def _published_bin_repo():
    repo = RepoBuilder()
    repo.add_target("a/one.txt", b"one")
    repo.add_target("a/two.txt", b"two", custom={"k": [1, 2]})
    repo.publish()
    return repo


def test_lazy_entries_get_is_mapping_get():
    repo = _published_bin_repo()
    expected = repo.md["targets"].signed.targets  # python-tuf's parse
    targets = Metadata.from_bytes(repo.role_bytes("targets")).signed.targets
    for path, want in expected.items():
        got = targets.get(path)
        assert isinstance(got, TargetFile)
        assert got is targets[path]  # built once, then the same object
        assert (got.length, got.hashes, got.custom) == (want.length, want.hashes, want.custom)
    sentinel = object()
    for missing in ("a/three.txt", "", "A/ONE.TXT", 5, None):
        assert targets.get(missing) is None
        assert targets.get(missing, sentinel) is sentinel
    del targets["a/one.txt"]
    assert targets.get("a/one.txt") is None
    added = TargetFile(3, {"sha256": "00" * 32}, "a/new.txt")
    targets["a/new.txt"] = added
    assert targets.get("a/new.txt") is added


def test_trusted_metadata_still_gives_its_signed_bytes():
    """The trusted set lets verified bytes go; asking for them again gives
    the canonical bytes securesystemslib makes of the signed part."""
    repo = _published_bin_repo()
    trusted = TrustedMetadataSet(repo.root_bytes(1), datetime.now(timezone.utc))
    trusted.update_timestamp(repo.role_bytes("timestamp"))
    trusted.update_snapshot(repo.role_bytes("snapshot"))
    trusted.update_targets(repo.role_bytes("targets"))
    for role, data in (("root", repo.root_bytes(1)), ("targets", repo.role_bytes("targets"))):
        want = encode_canonical(json.loads(data)["signed"]).encode()
        assert trusted[role].signed_bytes == want
        # and the trusted copy still verifies against its delegator's keys
        trusted.root.verify_delegate(role, trusted[role])
