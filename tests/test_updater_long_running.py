"""Refreshing again in a long-running process:
``UpdaterConfig(refresh_interval=...)``.

The repository (built with python-tuf) moves on between refreshes; the
rollback tests serve older, validly signed metadata and remove the cached
files first, so only what the Updater remembers from its earlier refresh
can refuse them (a new Updater over the same emptied cache accepts them:
that is checked too, so the tests fail if the memory does nothing).
"""

from __future__ import annotations

import pytest

from tufc import exceptions
from tufc.updater import UpdaterConfig

from tests.updater_harness import Env


def _long(env: Env, impl, interval: float = 0):
    return env.updater(impl, config=UpdaterConfig(refresh_interval=interval))


def _forget_cache(env: Env) -> None:
    for name in ("timestamp.json", "snapshot.json"):
        (env.metadata_dir / name).unlink()


def test_a_new_snapshot_and_target_are_picked_up(env, tufc_impl):
    env.repo.add_target("a.txt", b"a")
    env.publish()
    updater = _long(env, tufc_impl)
    updater.refresh()
    assert updater.get_targetinfo("b.txt") is None
    env.repo.add_target("b.txt", b"b")
    env.publish()
    updater.refresh()
    assert updater.get_targetinfo("b.txt").length == 1
    assert updater._trusted_set.snapshot.version == env.repo.md["snapshot"].signed.version


def test_within_the_interval_refresh_does_nothing(env, tufc_impl):
    updater = _long(env, tufc_impl, interval=3600)
    updater.refresh()
    env.server.clear_requests()
    env.repo.add_target("b.txt", b"b")
    env.publish()
    updater.refresh()
    assert env.requests() == []
    assert updater.get_targetinfo("b.txt") is None


def test_once_is_still_the_default(env, tufc_impl):
    updater = env.updater(tufc_impl)
    updater.refresh()
    with pytest.raises(RuntimeError, match="refresh_interval"):
        updater.refresh()


def test_a_timestamp_rollback_across_refreshes_is_refused(cenv, tufc_impl):
    env = cenv  # old files stay published: a new Updater accepts them
    old = env.repo.role_bytes("timestamp")
    env.repo.add_target("b.txt", b"b")
    env.publish()
    updater = _long(env, tufc_impl)
    updater.refresh()
    _forget_cache(env)
    env.server.files["metadata/timestamp.json"] = old
    with pytest.raises(exceptions.BadVersionNumberError):
        updater.refresh()
    # the memory refused it: a new Updater accepts the old timestamp
    _forget_cache_if_present(env)
    env.updater(tufc_impl).refresh()


def _forget_cache_if_present(env: Env) -> None:
    for name in ("timestamp.json", "snapshot.json"):
        (env.metadata_dir / name).unlink(missing_ok=True)


def test_a_snapshot_rollback_across_refreshes_is_refused(cenv, tufc_impl):
    env = cenv  # old files stay published: a new Updater accepts them
    """A new timestamp and snapshot, validly signed, where the targets
    version went back."""
    env.repo.add_target("b.txt", b"b")
    env.publish()  # targets v2
    updater = _long(env, tufc_impl)
    updater.refresh()
    env.repo.md["snapshot"].signed.meta["targets.json"].version = 1
    env.repo.bump("snapshot")
    env.publish()
    _forget_cache(env)
    with pytest.raises(exceptions.BadVersionNumberError, match="targets"):
        updater.refresh()
    # and nothing is answered from the refused state
    with pytest.raises(exceptions.BadVersionNumberError):
        updater.get_targetinfo("b.txt")
    _forget_cache_if_present(env)
    fresh = env.updater(tufc_impl)
    fresh.refresh()


def test_a_failed_refresh_can_be_retried(env, tufc_impl):
    updater = _long(env, tufc_impl, interval=3600)
    updater.refresh()
    env.repo.add_target("b.txt", b"b")
    env.publish()
    updater = _long(env, tufc_impl, interval=0)
    env.server.errors["metadata/timestamp.json"] = 500
    with pytest.raises(exceptions.DownloadError):
        updater.refresh()
    del env.server.errors["metadata/timestamp.json"]
    updater.refresh()
    assert updater.get_targetinfo("b.txt").length == 1


def test_keys_rotated_between_refreshes_drop_the_memory(env, tufc_impl):
    """Fast-forward recovery (spec 5.3.11) across refreshes: after the root
    rotates the timestamp keys, a timestamp with a lower version is
    accepted."""
    for _ in range(3):
        env.repo.bump("timestamp")
        env.publish()
    updater = _long(env, tufc_impl)
    updater.refresh()
    high = updater._trusted_set.timestamp.version
    env.repo.rotate_keys("timestamp")
    env.repo.md["timestamp"].signed.version = 1
    env.repo.bump("timestamp")  # published as version 2
    env.publish()
    updater.refresh()
    assert updater._trusted_set.timestamp.version == 2 < high


@pytest.mark.parametrize("bad", [-1, "1", float("inf"), True])
def test_refresh_interval_is_checked(env, tufc_impl, bad):
    with pytest.raises(ValueError):
        env.updater(tufc_impl, config=UpdaterConfig(refresh_interval=bad))
