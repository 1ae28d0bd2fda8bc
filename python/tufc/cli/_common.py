"""What every command group shares: the one-line error, the explanation
of each tufc failure, the parser class (exit 1, never 2), times, logging.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import sys

from .. import exceptions

EXIT_OK = 0
EXIT_FAILURE = 1


class CliError(Exception):
    """A failure the command line reports as one line (exit status 1)."""


# What each failure means, looked up along the exception's class hierarchy
# so the most specific class gives the explanation.
_WHY = {
    exceptions.TargetNotFoundError: "no such target",
    exceptions.InvalidChangeError: "invalid change (nothing was enqueued)",
    exceptions.PublisherBusyError: "another publisher is running",
    exceptions.SigningError: "signing failed (nothing was published)",
    exceptions.StoreError: "queue database failed (nothing was published)",
    exceptions.PublishError: "publish failed (the published repository is unchanged)",
    exceptions.EqualVersionNumberError: "version check failed (same version as the trusted copy)",
    exceptions.BadVersionNumberError: "version check failed (rollback or mismatched version)",
    exceptions.ExpiredMetadataError: "expiry check failed (metadata expired: freeze attack or stale repository)",
    exceptions.UnsignedMetadataError: "signature check failed (not signed by a threshold of trusted keys)",
    exceptions.LengthOrHashMismatchError: "length/hash check failed (tampered or mixed-and-matched data)",
    exceptions.DeserializationError: "format check failed (malformed metadata)",
    exceptions.RepositoryError: "repository check failed",
    exceptions.DownloadLengthMismatchError: "length limit exceeded (endless data)",
    exceptions.SlowRetrievalError: "download too slow",
    exceptions.DownloadHTTPError: "server error",
    exceptions.DownloadError: "download failed",
    exceptions.UnsupportedAlgorithmError: "unsupported algorithm (failing closed)",
    exceptions.FormatError: "format check failed",
    exceptions.StorageError: "local storage failed",
}


def explain(exc: BaseException) -> str:
    """One line naming which check failed and why, for any tufc exception."""
    detail = str(exc).strip().splitlines()
    detail_line = detail[0] if detail else ""
    for cls in type(exc).__mro__:
        why = _WHY.get(cls)
        if why is not None:
            break
    else:
        if isinstance(exc, OSError):
            why = "local file error"
            detail_line = f"{exc.strerror or exc}" + (
                f": {exc.filename}" if exc.filename else ""
            )
        else:
            why = type(exc).__name__
    if isinstance(exc, Exception) and getattr(exc, "status_code", None):
        why = f"{why} (HTTP {exc.status_code})"
    return f"{why}: {detail_line}" if detail_line else why


def step(what: str, func, *func_args, note=None):
    """Run one step; a failure becomes a CliError naming the step, and
    ``note(exc)`` (if given) adds what else is known about it."""
    try:
        return func(*func_args)
    except CliError:
        raise
    except (exceptions.TufcError, OSError, ValueError) as exc:
        extra = note(exc) if note is not None else ""
        raise CliError(f"{what}: {explain(exc)}{extra}") from exc


class Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; the protocol allows only 0 and 1."""

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILURE, f"{self.prog}: error: {message}\n")


def parse_time(text: str) -> datetime.datetime:
    """RFC 3339 (``2030-01-01T00:00:00Z``) or a date; naive means UTC."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        when = datetime.datetime.fromisoformat(value)
    except ValueError as exc:
        raise CliError(
            f"--as-of: not a time: {text!r} (use e.g. 2030-01-01T00:00:00Z)"
        ) from exc
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.astimezone(datetime.timezone.utc)


def when(value) -> str:
    """A datetime as RFC 3339 in UTC (``2030-01-01T00:00:00Z``)."""
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
    return str(value)


def setup_logging(verbosity: int) -> None:
    if verbosity <= 0:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("tufc: %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO if verbosity == 1 else logging.DEBUG)


def report(args: argparse.Namespace, message: str, exc) -> None:
    """The one error line on stderr (``-vv``: the traceback before it)."""
    if exc is not None and (getattr(args, "verbose", 0) or 0) >= 2:
        import traceback

        traceback.print_exception(type(exc), exc, exc.__traceback__)
    command = getattr(args, "command", None)
    prefix = f"tufc {command}" if command else "tufc"
    print(f"{prefix}: error: {message}", file=sys.stderr)
