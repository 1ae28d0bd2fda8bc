"""Running pip or uv with a proxy as their only index.

The tool gets the proxy through its environment (``PIP_INDEX_URL``,
``UV_DEFAULT_INDEX``) and reads no configuration file (which could name
another index); options and environment variables that would add an
index or a folder of files beside the proxy, and direct URLs
(``name @ https://...``, ``git+https://...``), are refused, since whatever
they fetch would bypass verification.  (Local files and folders named on
the command line are the user's own choice and pass.)
"""

from __future__ import annotations

import os
import shutil
import sys

from ..exceptions import FormatError

# Per tool: options that add or replace indexes (each may also be given as
# --opt=value or, for short ones, -xVALUE), environment variables doing the
# same, and how the proxy is named in the environment.
_BYPASS_OPTIONS = {
    "pip": ("--index-url", "-i", "--extra-index-url", "--find-links", "-f"),
    "uv": ("--index", "--default-index", "--index-url", "-i", "--extra-index-url",
           "--find-links", "-f"),
}
_BYPASS_ENV = {
    "pip": ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS"),
    "uv": ("UV_INDEX", "UV_DEFAULT_INDEX", "UV_INDEX_URL", "UV_EXTRA_INDEX_URL",
           "UV_FIND_LINKS"),
}
# Options whose value may be a URL that is not a package source.
_URL_VALUED = ("--proxy", "--cert", "--client-cert")
# Options whose value is a requirements file that may itself name indexes.
_REQUIREMENT_FILES = ("-r", "--requirement", "-c", "--constraint")


def check_arguments(tool: str, args: list, environ=os.environ) -> None:
    """Refuse (FormatError) what would make ``tool`` fetch from anywhere but
    the proxy: an index option, a requirements file naming one, or one of
    those environment variables."""
    options = _BYPASS_OPTIONS[tool]
    for i, arg in enumerate(args):
        name = arg.partition("=")[0] if arg.startswith("--") else arg
        if name in options or any(arg.startswith(o) and len(o) == 2 for o in options):
            raise FormatError(
                f"{arg}: another index or file folder would bypass the proxy's "
                "verification (only the TUF-verified index is used)")
        after_url_option = i > 0 and args[i - 1] in _URL_VALUED
        if "://" in arg and not after_url_option and not arg.startswith(
                tuple(o + "=" for o in _URL_VALUED)):
            raise FormatError(
                f"{arg}: a direct URL would be fetched without verification "
                "(name the project instead; the proxy serves what TUF lists)")
        value = None
        if arg in _REQUIREMENT_FILES and i + 1 < len(args):
            value = args[i + 1]
        elif arg.startswith(tuple(o + "=" for o in _REQUIREMENT_FILES if o.startswith("--"))):
            value = arg.partition("=")[2]
        if value is not None:
            _check_requirements(value, options)
    for name in _BYPASS_ENV[tool]:
        if environ.get(name):
            raise FormatError(
                f"{name} is set: another index would bypass the proxy's verification")


def _check_requirements(path: str, options) -> None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return  # the tool reports a missing file itself
    for line in lines:
        if "://" in line.split("#")[0]:
            raise FormatError(f"{path}: a direct URL in a requirements file would "
                              "be fetched without verification")
        word = line.strip().split("=")[0].split()[:1]
        if word and (word[0] in options or word[0] in _REQUIREMENT_FILES):
            raise FormatError(
                f"{path}: {word[0]} in a requirements file: another index (or a "
                "nested requirements file tufc cannot check) would bypass the proxy")


def environment(tool: str, index_url: str, environ=os.environ) -> dict:
    """``environ`` with the proxy as ``tool``'s only index."""
    env = dict(environ)
    if tool == "pip":
        env["PIP_INDEX_URL"] = index_url
        env["PIP_CONFIG_FILE"] = os.devnull  # no pip.conf naming another index
    else:
        env["UV_DEFAULT_INDEX"] = index_url
        env["UV_NO_CONFIG"] = "1"  # no uv.toml / [tool.uv] naming another index
    return env


def command(tool: str, args: list) -> list:
    """The command line that runs ``tool`` with ``args``."""
    if tool == "pip":
        return [sys.executable, "-m", "pip", *args]
    program = shutil.which("uv")
    if program is None:
        try:
            from uv import find_uv_bin  # the uv package from PyPI
        except ImportError as exc:
            raise FormatError("uv is not installed (pip install uv)") from exc
        program = find_uv_bin()
    return [program, *args]
