"""Check a published repository folder the way clients see it.

``client_view(folder, paths)`` runs python-tuf's ngclient (the independent
oracle) and tufc's Updater over ``folder/metadata`` from its first root, and
returns what each resolves for every path: ``{path: (length, hashes) or
None}``.  Both must refresh successfully and agree; the caller compares
the result with the state it expects.
"""

from __future__ import annotations

import os
import pathlib
import tempfile

import tufc
from tufc.updater import Updater

from tests.updater_harness import _cross_check_here

# python-tuf's verdict does not depend on tufc's core: ask it in the native
# pass (the other passes publish the same bytes: test_repository_engine)
PYTHON_TUF = _cross_check_here()


def _python_tuf_fetcher():
    from tuf.ngclient import FetcherInterface
    from tuf.api import exceptions as tuf_exc

    class LocalFetcher(FetcherInterface):
        """Serves file:// URLs from disk (python-tuf has no file fetcher)."""

        def _fetch(self, url):
            path = url[len("file://"):]
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except FileNotFoundError:
                raise tuf_exc.DownloadHTTPError(f"{url} not found", 404) from None
            return iter([data])

    return LocalFetcher()


def _view(updater, paths) -> dict:
    updater.refresh()
    out = {}
    for path in paths:
        info = updater.get_targetinfo(path)
        out[path] = None if info is None else (info.length, dict(info.hashes))
    return out


def client_view(folder, paths, python_tuf: bool = True) -> dict:
    """What tufc's Updater (and python-tuf's ngclient) resolve for ``paths``
    in the repository at ``folder`` (``folder/metadata``), bootstrapped
    from its ``1.root.json``.  Raises if either refuses the repository or
    they disagree."""
    metadata = pathlib.Path(folder, "metadata")
    root = (metadata / "1.root.json").read_bytes()
    url = metadata.resolve().as_uri() + "/"
    paths = list(paths)
    with tempfile.TemporaryDirectory() as tmp:
        os.makedirs(os.path.join(tmp, "tufc"))
        ours = _view(Updater(os.path.join(tmp, "tufc"), url, os.path.join(tmp, "t1"),
                             url, bootstrap=root), paths)
        if python_tuf and PYTHON_TUF:
            from tuf.ngclient import Updater as TufUpdater

            os.makedirs(os.path.join(tmp, "tuf"))
            theirs = _view(TufUpdater(os.path.join(tmp, "tuf"), url, os.path.join(tmp, "t2"),
                                      url, fetcher=_python_tuf_fetcher(), bootstrap=root), paths)
            assert ours == theirs, "tufc's Updater and python-tuf's ngclient disagree"
    return ours


def expected_view(state: dict, paths) -> dict:
    """``client_view``'s shape for ``state``: path -> (length, hashes)."""
    return {p: (state[p]["length"], dict(state[p]["hashes"])) if p in state else None for p in paths}


__all__ = ["client_view", "expected_view", "tufc"]
