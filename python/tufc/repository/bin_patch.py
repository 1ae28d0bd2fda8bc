"""The next version of each changed bin: read, patch, sign, write, on all
cores.

A publish of 1,000 targets touches ~1,000 bins of ~33 KB each.  A bin is
patched as bytes (``patch_targets``: its entries are never turned into
dicts and encoded again), then signed and written; each bin is one task in
a thread pool, and the native core releases the GIL while it patches and
signs, so the tasks run on every core.  Files are written unsynced under
new version names: nothing refers to them until the caller syncs them and
publishes the snapshot that names them.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import logging
import os
import re
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from .. import _backend
from ..exceptions import DeserializationError, FormatError, PublishError, SigningError
from . import metadata_io as mio
from .changes import PLAIN_ENTRY, Change
from .signing import signature_of

__all__ = ["net_changes", "next_bin", "write_next_versions"]

log = logging.getLogger(__name__)

# The envelope as the engine writes it, up to the "signed" bytes: hex key
# ids and signatures.  Anything else (another signer's encoding, a file
# written with JSON escapes) takes load_metadata's way to the bytes.
_SIG = rb'\{"keyid":"[0-9a-f]{1,128}","sig":"[0-9a-f]{1,2048}"\}'
_ENGINE_HEAD = re.compile(rb'\{"signatures":\[(?:%s(?:,%s)*)?\],"signed":' % (_SIG, _SIG)).match


def _entry_bytes(change: Change) -> bytes:
    """The canonical JSON of a queued entry (re-encoded unless it is the
    plain form: the queue is a database another program can write)."""
    entry = bytes(change.entry)
    if PLAIN_ENTRY(entry):
        return entry
    try:
        obj = json.loads(entry, strict=False)  # canonical JSON keeps control characters raw
    except ValueError as exc:
        raise PublishError(f"the queued entry of {change.path} is not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise PublishError(f"the queued entry of {change.path} is not a JSON object")
    return _backend.canonical_json(obj)


def net_changes(changes: Iterable[Change]) -> tuple:
    """``(items, first_removals)``: one ``(path, entry | None)`` per path,
    the last change winning, sorted by UTF-8 path; and the paths whose
    first change in the batch is a removal (absent from the bin, they were
    removed twice).  A removal right after another is logged here."""
    final: dict = {}
    first_removals = set()
    for change in changes:
        path = change.path
        if change.op == "add":
            final[path] = _entry_bytes(change)
            continue
        if path not in final:
            first_removals.add(path)
        elif final[path] is None:
            log.warning("removal of %s: not in its bin (removed twice?)", path)
        final[path] = None
    items = sorted(final.items(), key=lambda item: item[0].encode("utf-8"))
    return items, first_removals


def next_bin(data: bytes, name: str, version: int, expires: str, items: Sequence) -> tuple:
    """``patch_targets``' answer (signed bytes, absent indices, raw control
    characters) for bin ``name``'s next version from its current file
    ``data``."""
    head = _ENGINE_HEAD(data)
    if head is not None and data.endswith(b"}"):
        try:
            return _backend.patch_targets(data[head.end():-1], version, expires, items)
        except FormatError:
            pass  # e.g. escaped control characters: canonicalize first
    try:
        _, signed = _backend.load_metadata(data)
        return _backend.patch_targets(signed, version, expires, items)
    except FormatError as exc:
        raise DeserializationError(f"{name}: {exc}") from exc


def write_next_versions(metadata_dir: str, jobs: Sequence, expires: str, signers: Sequence[Any],
                        workers: int = 2, timeout: float | None = 60.0) -> dict:
    """Write the next version of every bin in ``jobs`` (``(name, current
    version, changes)``); return ``{name: new version}``.

    Any failure (a bin that cannot be read or patched, a signer that fails,
    ``timeout`` seconds passing) raises, with the files already written left
    unreferenced."""
    if not signers:
        raise SigningError("no signer for this role")
    # Once the batch has failed, a task still running must not rename its
    # file into place: the next publish may have written that version since.
    lock = threading.Lock()
    abandoned = False

    @contextlib.contextmanager
    def still_wanted():
        with lock:
            yield not abandoned

    def one(job) -> tuple:
        name, version, changes = job
        items, first_removals = net_changes(changes)
        data = mio.read_file(os.path.join(metadata_dir, mio.role_file(name, version)))
        signed, absent, control = next_bin(data, name, version + 1, expires, items)
        for index in absent:
            path = items[index][0]
            if path in first_removals:
                log.warning("removal of %s: not in its bin (removed twice?)", path)
        signatures = [signature_of(s, signed) for s in signers]
        mio.write(metadata_dir, mio.role_file(name, version + 1),
                  mio.envelope_bytes(signatures, signed, plain=not control), durable=False,
                  rename_if=still_wanted)
        return name, version + 1

    if workers <= 1 or len(jobs) < 4:
        return dict(one(job) for job in jobs)
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tufc-bin")
    hung = False
    try:
        futures = [pool.submit(one, job) for job in jobs]
        done, not_done = concurrent.futures.wait(
            futures, timeout=timeout, return_when=concurrent.futures.FIRST_EXCEPTION)
        for future in futures:
            if future in done and future.exception() is not None:
                raise future.exception()
        if not_done:
            hung = True
            raise SigningError(f"the bins were not signed and written within {timeout} s")
        return dict(future.result() for future in futures)
    except BaseException:
        with lock:
            abandoned = True
        raise
    finally:
        # after a failure the running tasks finish (each one bin) before
        # this returns, unless one hangs (a remote signer): it is left to
        # finish, and discards its file
        pool.shutdown(wait=not hung, cancel_futures=True)
