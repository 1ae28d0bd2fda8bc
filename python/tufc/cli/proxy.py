"""``tufc proxy``, ``tufc pip`` and ``tufc uv``: pip and uv installing only
what TUF verified, through a package index on 127.0.0.1 (``tufc.proxy``).

    tufc proxy --repo URL [--root ROOT.json | --root-keyid KEYID | --trust-on-first-use]
               [--port N] [--refresh-interval SECONDS] [--layout tufc|warehouse]
    tufc pip --repo URL [trust options] install ...
    tufc uv --repo URL [trust options] pip install ...

Trust is established as ``tufc init`` does (and only once: a folder that
trusts a root already keeps it; a different --root is refused), in the
same per-user folder keyed by the repository URL.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import logging
import os
import subprocess
import sys

from .. import exceptions
from ._common import CliError, step
from ._location import Location, add_location_options, data_home

logger = logging.getLogger("tufc.cli")

DEFAULT_PORT = 8470


def register(add_command) -> None:
    proxy = add_command("proxy", "serve a TUF-verified package index on 127.0.0.1 for pip and uv")
    _add_proxy_options(proxy)
    proxy.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free one)")
    proxy.set_defaults(handler=cmd_proxy)
    for tool, example in (("pip", "install ..."), ("uv", "pip install ...")):
        parser = add_command(tool, f"run {tool} with a TUF-verifying proxy as its only index")
        _add_proxy_options(parser)
        parser.add_argument("tool_args", nargs=argparse.REMAINDER, metavar="ARGS",
                            help=f"{tool}'s own arguments, e.g. {example}")
        parser.set_defaults(handler=cmd_tool, tool=tool)


def _add_proxy_options(parser: argparse.ArgumentParser) -> None:
    add_location_options(parser, True, ("repo", "metadata-dir", "target-base-url"))
    trust = parser.add_argument_group("trust (the first time; afterwards the folder's root)")
    trust.add_argument("--root", metavar="FILE", help="a root metadata file you obtained securely")
    trust.add_argument("--root-keyid", dest="root_keyids", action="append", default=[],
                       metavar="KEYID", help="accept 1.root.json only if signed by this key (repeatable)")
    trust.add_argument("--threshold", type=int, metavar="N",
                       help="how many pinned key ids must have signed (default: all)")
    trust.add_argument("--trust-on-first-use", action="store_true",
                       help="accept the repository's 1.root.json as is")
    parser.add_argument("--layout", choices=("tufc", "warehouse"), default="tufc",
                        help="target names: tufc's engine (files by consistent-snapshot "
                        "name) or Warehouse's (default tufc)")
    parser.add_argument("--page-target", metavar="TEMPLATE",
                        help="target path of a project page (default simple/{project}/index.html)")
    parser.add_argument("--files-url", metavar="URL",
                        help="the URL file target paths are relative to (default: the "
                        "targets URL; warehouse: https://files.pythonhosted.org/)")
    parser.add_argument("--refresh-interval", type=float, default=300.0, metavar="SECONDS",
                        help="refresh TUF metadata at most this often (default 300)")
    parser.add_argument("--cache-dir", metavar="DIR",
                        help="verified files, by hash (default: a per-user folder)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS",
                        help="seconds to wait for the upstream to connect or send data")


def _defaults(args: argparse.Namespace) -> None:
    for name in ("metadata_url", "metadata_dir", "target_base_url"):
        if not hasattr(args, name):
            setattr(args, name, None)


def _start(args: argparse.Namespace, port: int):
    """Trust, the first refresh and a running server, or a CliError."""
    from ..proxy import LAYOUTS, Index, Names, ProxyServer
    from . import client

    _defaults(args)
    location = Location(args)
    location.require_url()
    if os.path.exists(location.root_path()):
        if args.root:  # must be where the folder's trust comes from
            from ._trust import pinned_chain

            now = datetime.datetime.now(datetime.timezone.utc)
            pinned_chain(location.metadata_dir, args.root, now)
    else:
        init = argparse.Namespace(
            trusted_root=args.root, root_keyids=args.root_keyids, threshold=args.threshold,
            trust_on_first_use=args.trust_on_first_use and not args.root_keyids,
            force=False, timeout=args.timeout)
        if not (init.trusted_root or init.root_keyids or init.trust_on_first_use):
            raise CliError(f"{location.metadata_dir} trusts no root yet: pass --root FILE, "
                           "--root-keyid KEYID or --trust-on-first-use")
        with contextlib.redirect_stdout(sys.stderr):  # stdout is the tool's
            client.cmd_init(init, location)
    names = LAYOUTS[args.layout]
    names = Names(page=args.page_target or names.page,
                  files_url=args.files_url or names.files_url,
                  file_hash_prefix=names.file_hash_prefix)
    if "{project}" not in names.page:
        raise CliError("--page-target: the template must contain {project}")
    cache = args.cache_dir or os.path.join(data_home(), "tufc", "proxy-cache")
    index = Index(location.metadata_dir, location.require_url(),
                  location.resolved_target_base_url(), cache, names,
                  refresh_interval=args.refresh_interval, timeout=args.timeout)
    snapshot = index.refresh()
    if snapshot.error is not None:
        step("refresh", _raise, snapshot.error)
    try:
        server = ProxyServer(index, port)
    except OSError as exc:
        raise CliError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from exc
    _log_proxy(args.verbose or 0)
    return server


def _raise(exc):
    raise exc


def _log_proxy(verbosity: int) -> None:
    """The proxy's refusals are always logged on stderr (``-v``: all steps)."""
    log = logging.getLogger("tufc.proxy")
    if verbosity <= 0 and not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("tufc proxy: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.WARNING)
        log.propagate = False


def cmd_proxy(args: argparse.Namespace) -> None:
    server = _start(args, args.port)
    print(f"tufc proxy: serving {server.url}simple/ (verified by TUF from "
          f"{server.index.metadata_url}); pip install --index-url {server.url}simple/ ...",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()


def cmd_tool(args: argparse.Namespace) -> int:
    from ..proxy import tools

    tool_args = list(args.tool_args)
    if tool_args[:1] == ["--"]:
        tool_args = tool_args[1:]
    if not tool_args:
        raise CliError(f"no {args.tool} arguments given (e.g. tufc {args.tool} --repo URL "
                       f"{'install' if args.tool == 'pip' else 'pip install'} NAME)")
    try:
        tools.check_arguments(args.tool, tool_args)
        command = tools.command(args.tool, tool_args)
    except exceptions.FormatError as exc:
        raise CliError(f"refused: {exc}") from exc
    server = _start(args, 0)
    server.start()
    try:
        env = tools.environment(args.tool, server.url + "simple/")
        logger.info("running %s with index %ssimple/", " ".join(command), server.url)
        try:
            return subprocess.call(command, env=env)
        except OSError as exc:
            raise CliError(f"cannot run {command[0]}: {exc.strerror}") from exc
    finally:
        server.shutdown()
        server.server_close()
