"""The ``tufc`` command line.

One module per command group (``client``: init, refresh, download, info,
verify; ``demo``; ``repo``; ``proxy``: proxy, pip, uv); each exposes ``register(add_command)``, which adds its
subcommands and sets each one's ``handler(args)``.  Adding a group is its
module plus its name in ``_GROUPS``.

Every failure is one readable line on stderr and exit status 1 (argparse's
usage errors included); success is 0; SIGTERM, like Ctrl-C, stops cleanly
(exit status 143).  ``-v`` logs the steps, ``-vv`` also
prints tracebacks.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
from typing import Sequence

from .. import __version__, exceptions
from ._common import EXIT_FAILURE, EXIT_OK, CliError, Parser, explain, report, setup_logging
from ._location import add_location_options

_GROUPS = ("client", "demo", "repo", "proxy")

# Killed by SIGTERM (systemctl stop, docker stop): 128 + 15, as a shell says.
EXIT_TERMINATED = 128 + signal.SIGTERM


class Terminated(BaseException):
    """SIGTERM arrived: unwinds like Ctrl-C, so partial files are removed."""


def _terminate(signum, frame):
    raise Terminated()

__all__ = ["main", "build_parser"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="tufc",
        description="Securely fetch files from a TUF repository.",
        epilog="Try 'tufc demo' to watch TUF refuse real attacks, offline.",
    )
    parser.add_argument(
        "--version", action="version", version=f"tufc {__version__}"
    )
    add_location_options(parser, nested=False)  # the conformance form
    _add_verbose(parser, 0)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    def add_command(name: str, help_text: str) -> argparse.ArgumentParser:
        """A subcommand with only -v; its group adds what else it takes."""
        sub = commands.add_parser(name, help=help_text, description=help_text)
        _add_verbose(sub, argparse.SUPPRESS)
        return sub

    for group in _GROUPS:
        importlib.import_module(f"{__name__}.{group}").register(add_command)
    return parser


def _add_verbose(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "-v", "--verbose", action="count", default=default,
        help="log the steps (-vv: also tracebacks)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 or 1)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or a usage error (1)
        return EXIT_OK if exc.code in (0, None) else EXIT_FAILURE
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_FAILURE
    setup_logging(args.verbose or 0)
    previous = _on_sigterm(_terminate)
    try:
        status = args.handler(args)
        return EXIT_OK if status is None else status
    except CliError as exc:
        report(args, str(exc), exc)
    except KeyboardInterrupt:
        report(args, "interrupted", None)
    except Terminated:
        report(args, "terminated (SIGTERM)", None)
        return EXIT_TERMINATED
    except BrokenPipeError:  # e.g. `tufc demo | head`: the reader left
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except Exception as exc:  # expected tufc failures outside a step, or a bug
        if isinstance(exc, (exceptions.TufcError, OSError)):
            report(args, explain(exc), exc)
        else:
            report(args, f"internal error: {type(exc).__name__}: {exc}", exc)
    finally:
        _on_sigterm(previous)
    return EXIT_FAILURE


def _on_sigterm(handler):
    """Install ``handler`` for SIGTERM; the previous one (None: not the main
    thread, where Python cannot install one)."""
    if handler is None:
        return None
    try:
        return signal.signal(signal.SIGTERM, handler)
    except ValueError:
        return None
