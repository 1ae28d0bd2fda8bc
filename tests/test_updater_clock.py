"""Clock rollback: the newest trustworthy time kept in metadata_dir.

After each successful refresh the Updater records the time expiry was
judged at, as the modification time of ``latest_known_time``.  A later refresh judges expiry at
the larger of the local clock and that time, and refuses to run
(``ClockRollbackError``) when the clock is more than
``clock_rollback_tolerance`` behind it.  The local clock is substituted
(``datetime.datetime.now``), as in test_updater.py.
"""

from __future__ import annotations

import datetime
import os

import pytest

from tufc import exceptions
from tufc.updater import UpdaterConfig

from tests.updater_harness import Env

UTC = datetime.timezone.utc
T0 = datetime.datetime(2090, 6, 1, tzinfo=UTC)
EXPIRES = datetime.datetime(2090, 6, 10, tzinfo=UTC)
DAY = datetime.timedelta(days=1)


def _clock(monkeypatch, when: datetime.datetime) -> None:
    class Clock(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return when if tz is None else when.astimezone(tz)

    monkeypatch.setattr(datetime, "datetime", Clock)


def _recorded(env: Env) -> datetime.datetime:
    info = os.lstat(env.metadata_dir / "latest_known_time")
    return datetime.datetime.fromtimestamp(info.st_mtime, UTC)


@pytest.fixture
def timed(env) -> Env:
    env.repo.expire("timestamp", EXPIRES)
    env.repo.add_target("a.txt", b"a")
    env.publish()
    return env


def test_the_time_of_a_successful_refresh_is_recorded(timed, tufc_impl, monkeypatch):
    _clock(monkeypatch, T0)
    timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == T0
    _clock(monkeypatch, T0 + DAY)
    timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == T0 + DAY


def test_a_clock_far_behind_is_reported(timed, tufc_impl, monkeypatch):
    _clock(monkeypatch, T0 + 5 * DAY)
    timed.updater(tufc_impl).refresh()
    _clock(monkeypatch, T0)  # five days back: everything looks unexpired
    updater = timed.updater(tufc_impl)
    with pytest.raises(exceptions.ClockRollbackError, match="latest_known_time"):
        updater.refresh()
    assert _recorded(timed) == T0 + 5 * DAY  # not moved back


def _record(env: Env, when: datetime.datetime) -> None:
    env.metadata_dir.mkdir(parents=True, exist_ok=True)
    path = env.metadata_dir / "latest_known_time"
    path.write_bytes(b"")
    os.utime(path, (when.timestamp(), when.timestamp()))


def test_a_clock_a_little_behind_judges_expiry_at_the_recorded_time(timed, tufc_impl, monkeypatch):
    """Within the tolerance no alarm, but nothing is judged at the earlier
    time: metadata expired by the recorded time stays expired."""
    hour = datetime.timedelta(hours=1)
    _clock(monkeypatch, EXPIRES - hour)
    timed.updater(tufc_impl).refresh()  # unexpired by the local clock
    _record(timed, EXPIRES + hour)  # an earlier refresh saw this time
    with pytest.raises(exceptions.ExpiredMetadataError):
        timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == EXPIRES + hour


def test_the_recorded_time_never_passes_what_the_metadata_allowed(timed, tufc_impl, monkeypatch):
    """A refresh succeeds only before the timestamp expires, so a clock set
    far ahead and then corrected cannot leave a record beyond that expiry
    (the false alarm it would cause is bounded by the timestamp's
    lifetime): far ahead, the refresh fails and records nothing."""
    _clock(monkeypatch, T0)
    timed.updater(tufc_impl).refresh()
    _clock(monkeypatch, T0 + 365 * DAY)
    with pytest.raises(exceptions.ExpiredMetadataError):
        timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == T0
    _clock(monkeypatch, T0)
    timed.updater(tufc_impl).refresh()


def test_later_refreshes_move_the_record_in_place(timed, tufc_impl, monkeypatch):
    """One utime() per refresh: the file is made once, never replaced (a
    new file costs a warm start 0.1-0.3 ms on ext4), and what it holds is
    not read."""
    _clock(monkeypatch, T0)
    timed.updater(tufc_impl).refresh()
    path = timed.metadata_dir / "latest_known_time"
    made = os.lstat(path)
    _clock(monkeypatch, T0 + DAY)
    timed.updater(tufc_impl).refresh()
    assert os.lstat(path).st_ino == made.st_ino
    assert _recorded(timed) == T0 + DAY
    path.write_bytes(b'{"time": "2000-01-01T00:00:00Z"}')  # content is ignored
    os.utime(path, (T0.timestamp() + 5 * 86400,) * 2)
    _clock(monkeypatch, T0)
    with pytest.raises(exceptions.ClockRollbackError):
        timed.updater(tufc_impl).refresh()


@pytest.mark.parametrize("kind", ["missing", "symlink", "dangling symlink"])
def test_a_record_that_is_no_plain_file_is_made_again(timed, tufc_impl, monkeypatch, tmp_path, kind):
    """A symlink is not followed, neither to read a time nor to set one:
    it is replaced by a plain file of this folder."""
    timed.metadata_dir.mkdir(parents=True, exist_ok=True)
    path = timed.metadata_dir / "latest_known_time"
    elsewhere = tmp_path / "elsewhere"
    if kind == "symlink":
        elsewhere.write_bytes(b"x")
        os.utime(elsewhere, (T0.timestamp() + 5 * 86400,) * 2)  # would raise
    if kind != "missing":
        path.symlink_to(elsewhere)
    _clock(monkeypatch, T0)
    timed.updater(tufc_impl).refresh()
    assert not path.is_symlink()
    assert _recorded(timed) == T0
    if kind == "symlink":
        assert elsewhere.stat().st_mtime == T0.timestamp() + 5 * 86400


def test_a_record_at_the_second_is_compared_to_the_second(timed, tufc_impl, monkeypatch):
    """The record keeps whole seconds: a clock a fraction of a second behind
    it is not behind it."""
    half = datetime.timedelta(microseconds=500_000)
    _clock(monkeypatch, T0 + half)
    timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == T0
    _clock(monkeypatch, T0 + half)
    timed.updater(tufc_impl).refresh()
    assert _recorded(timed) == T0


def test_a_configured_reference_time_is_not_checked_nor_recorded(timed, tufc_impl, monkeypatch):
    _clock(monkeypatch, T0 + 5 * DAY)
    timed.updater(tufc_impl).refresh()
    monkeypatch.undo()  # the real clock (and datetime class) again
    config = UpdaterConfig(reference_time=T0)
    timed.updater(tufc_impl, config=config).refresh()
    assert _recorded(timed) == T0 + 5 * DAY


def test_offline_checks_the_clock_too(timed, tufc_impl, monkeypatch):
    _clock(monkeypatch, T0 + 5 * DAY)
    timed.updater(tufc_impl).refresh()
    _clock(monkeypatch, T0)
    with pytest.raises(exceptions.ClockRollbackError):
        timed.updater(tufc_impl, config=UpdaterConfig(offline=True)).refresh()


@pytest.mark.parametrize("bad", [-1, "1", float("nan"), None])
def test_clock_rollback_tolerance_is_checked(env, tufc_impl, bad):
    with pytest.raises(ValueError):
        env.updater(tufc_impl, config=UpdaterConfig(clock_rollback_tolerance=bad))
