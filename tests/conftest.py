"""Shared test fixtures.

The whole suite runs once per backend (CI sets TUFC_PURE_PYTHON=1 for the
second run); tests that compare the backends directly use ``native`` and
``pure`` below.
"""

import os
import pathlib

import pytest
from hypothesis import settings

from tufc import _pure

from tests.http_repo import HttpRepo
from tests.updater_harness import IMPLS, Env, Impl

# No timing deadlines (they flake on a loaded 2-core machine); fewer examples
# under the sanitizers, which run everything several times slower.
settings.register_profile("default", deadline=None, max_examples=100)
settings.register_profile("sanitizer", deadline=None, max_examples=25)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

SHARED = pathlib.Path(
    os.environ.get("TUFC_SHARED_DIR", pathlib.Path(__file__).resolve().parents[2] / "shared")
)
TESTDATA = SHARED / "testdata"


def shared_testdata(*parts):
    """Path to a file under ../shared/testdata, or skip when it is absent."""
    path = TESTDATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared test data not present: {path}")
    return path


@pytest.fixture
def pure():
    return _pure


@pytest.fixture
def native():
    try:
        from tufc import _tufc
    except ImportError as exc:  # pragma: no cover - depends on the build
        if os.environ.get("TUFC_REQUIRE_NATIVE"):
            raise
        pytest.skip(f"native core not built: {exc}")
    return _tufc


@pytest.fixture(params=["native", "pure"])
def core(request):
    """Each core in turn: tests using it run against both."""
    return request.getfixturevalue(request.param)


def block_growth(run, n: int, rounds: int = 3) -> int:
    """Smallest growth of Python's allocated blocks over ``rounds`` calls of
    ``run(n)`` (after one warm-up): a leak of one block per iteration shows
    as >= n in every round, while one-off noise (caches, free lists, the
    interpreter's own bookkeeping) does not repeat in each round."""
    import gc
    import sys

    run(n)
    growth = []
    for _ in range(rounds):
        gc.collect()
        before = sys.getallocatedblocks()
        run(n)
        gc.collect()
        growth.append(sys.getallocatedblocks() - before)
    return min(growth)


# --- the Updater tests' fixtures (harness: tests/updater_harness.py) ----------


@pytest.fixture(params=IMPLS)
def impl(request) -> Impl:
    """Each client the test runs against (python-tuf in the native pass)."""
    return Impl(request.param)


@pytest.fixture
def tufc_impl() -> Impl:
    return Impl("tufc")


@pytest.fixture
def server():
    """An HTTP server on 127.0.0.1 serving a dict of files."""
    with HttpRepo() as http:
        yield http


@pytest.fixture(params=[True, False], ids=["consistent", "plain"])
def env(request, tmp_path, server) -> Env:
    return Env(tmp_path, server, consistent_snapshot=request.param)


@pytest.fixture
def cenv(tmp_path, server) -> Env:
    """Consistent snapshots only."""
    return Env(tmp_path, server, consistent_snapshot=True)


# --- PostgreSQL (tests/pg_server.py) ------------------------------------------


@pytest.fixture(scope="session")
def postgres_server():
    """One PostgreSQL server for the session, started on first use."""
    from tests.pg_server import start_postgres

    server = start_postgres()
    yield server
    server.cleanup()


@pytest.fixture
def postgres_dsn(postgres_server):
    """A DSN of a fresh database on the session's server."""
    return postgres_server.dsn(postgres_server.create_database())


@pytest.fixture
def postgres_url(postgres_server):
    """A postgresql:// URL of a fresh database on the session's server."""
    return postgres_server.url(postgres_server.create_database())
