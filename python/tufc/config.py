"""``UpdaterConfig``: the Updater's knobs, python-tuf's names and defaults.

The fields and their order are python-tuf's ``tuf.ngclient.UpdaterConfig``
so existing code keeps working; tufc's additions follow them:
``reference_time`` (verify metadata "as of" a fixed moment instead of now)
the download deadline (``min_download_rate``, ``download_grace_period``),
the defence against slow retrieval that python-tuf's ngclient lacks,
``parallel_downloads``, ``offline``, ``refresh_interval`` and
``clock_rollback_tolerance``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from enum import Flag, unique


@unique
class EnvelopeType(Flag):
    """Metadata envelope formats (python-tuf's names).

    tufc reads the traditional canonical-JSON metadata only; ``SIMPLE``
    (DSSE) exists so that configurations naming it fail with a clear error.
    """

    METADATA = 1
    SIMPLE = 2


@dataclass
class UpdaterConfig:
    """Limits and options for an :class:`~tufc.updater.Updater`.

    Args:
        max_root_rotations: most new root versions loaded in one refresh.
        max_delegations: most targets roles visited in one target search.
        root_max_length: most bytes read for one root metadata file.
        timestamp_max_length: most bytes read for the timestamp.
        snapshot_max_length: most bytes read for the snapshot when the
            timestamp does not give its length.
        targets_max_length: most bytes read for a targets role when the
            snapshot does not give its length.
        prefix_targets_with_hash: with consistent snapshots, download
            targets as ``DIR/HASH.NAME`` (the published name).
        envelope_type: only ``EnvelopeType.METADATA`` is supported.
        app_user_agent: e.g. "MyApp/1.0", put before tufc's own user agent
            by the default fetcher.
        reference_time: a timezone-aware time at which expiry is judged;
            ``None`` (default) means the current time, read once per
            refresh.
        min_download_rate: bytes per second every download must average
            over its length limit: a download of at most N bytes fails with
            ``SlowRetrievalError`` once it has taken longer than
            ``download_grace_period + N / min_download_rate`` seconds, so a
            server sending a trickle cannot hold an update for hours.
        download_grace_period: seconds each download gets on top, for
            connecting and the first bytes.
        offline: use the cached metadata only, never the network: every
            file is verified again from the trusted root as a download
            would be (signatures, thresholds, versions, hashes, expiry at
            the reference time); what the cache lacks is an
            ``OfflineError``, expired metadata an ``ExpiredMetadataError``.
        refresh_interval: ``None`` (default): an Updater refreshes once,
            as python-tuf's.  Seconds: ``refresh()`` may be called again
            (a daemon, a proxy) and refreshes when that long has passed
            since the last successful refresh, keeping rollback protection
            across refreshes.
        clock_rollback_tolerance: seconds the local clock may be behind
            the newest time a successful refresh saw (kept as the
            modification time of metadata_dir/latest_known_time) before
            refresh fails with
            ``ClockRollbackError``.  Within it, expiry is judged at that
            newest time, never earlier.
        parallel_downloads: most downloads at once in ``get_targetinfos``
            and ``download_targets`` (threads; the fetcher must be
            thread-safe, as tufc's and python-tuf's Urllib3Fetcher are).
            Lookups in hash bins are bound by latency, not bandwidth: 16
            keeps a 20 ms round trip from dominating 200 lookups.
    """

    max_root_rotations: int = 256
    max_delegations: int = 32
    root_max_length: int = 512000  # bytes
    timestamp_max_length: int = 16384  # bytes
    snapshot_max_length: int = 2000000  # bytes
    targets_max_length: int = 5000000  # bytes
    prefix_targets_with_hash: bool = True
    envelope_type: EnvelopeType = EnvelopeType.METADATA
    app_user_agent: str | None = None
    reference_time: datetime.datetime | None = None
    # With these defaults a timestamp (16 KiB limit) has 18 s; the default
    # fetcher may notice up to one socket timeout (30 s) later: < 60 s.
    min_download_rate: float = 2048  # bytes per second
    download_grace_period: float = 10.0  # seconds
    parallel_downloads: int = 16
    offline: bool = False
    refresh_interval: float | None = None
    clock_rollback_tolerance: float = 86400.0  # seconds
