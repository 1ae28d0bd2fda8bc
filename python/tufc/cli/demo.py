"""``tufc demo``: replay real attacks against a local repository (the
program itself is ``tufc.demo``)."""

from __future__ import annotations

import argparse


def register(add_command) -> None:
    demo = add_command(
        "demo", "replay real attacks against a local repository (offline)"
    )
    demo.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from ..demo import run_demo

    return run_demo(verbose=bool(args.verbose))
