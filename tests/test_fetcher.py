"""Fetchers: the base-class contract, urllib3 over a real socket, file://.

python-tuf's fetchers run the same scenarios as a cross-check: for the same
server behaviour both must raise the same exception class (by name).
"""

from __future__ import annotations

import os
import pathlib
import time
import urllib.parse

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tufc
from tufc import exceptions
from tufc.fetcher import FetcherInterface, FileFetcher, Urllib3Fetcher, download_seconds

from tests.http_repo import ENDLESS_CAP, HttpRepo
from tests.updater_harness import REFERENCE_MIRRORED

DATA = bytes(range(256)) * 300  # 76,800 bytes


@pytest.fixture
def repo():
    with HttpRepo({"data.bin": DATA, "small": b"hello"}) as server:
        yield server


def _tuf_fetcher(**kwargs):
    from tuf.ngclient import Urllib3Fetcher as TufUrllib3Fetcher

    return TufUrllib3Fetcher(**kwargs)


@pytest.fixture(params=["tufc", "python-tuf"] if REFERENCE_MIRRORED else ["tufc"])
def make_fetcher(request):
    """A factory for an HTTP fetcher of each implementation."""
    if request.param == "tufc":
        return Urllib3Fetcher
    return _tuf_fetcher


def _raises_named(name):
    """pytest.raises for an exception class called ``name`` (either lib)."""

    class _Check:
        def __enter__(self):
            return self

        def __exit__(self, exc_type, exc, tb):
            assert exc_type is not None, f"expected {name}, nothing raised"
            names = [c.__name__ for c in exc_type.__mro__]
            assert names[0] == name, f"expected {name}, got {names[0]}: {exc}"
            self.value = exc
            return True

    return _Check()


# --- urllib3 over HTTP ---------------------------------------------------------


def test_download_bytes_exact(repo, make_fetcher):
    fetcher = make_fetcher()
    assert fetcher.download_bytes(repo.url + "data.bin", len(DATA)) == DATA


def test_download_file_yields_rewound_temp_file(repo, make_fetcher):
    fetcher = make_fetcher()
    with fetcher.download_file(repo.url + "data.bin", len(DATA) + 10) as f:
        assert f.read() == DATA
        name = f.name
    if isinstance(name, str):
        assert not os.path.exists(name)


def test_fetch_streams_chunks(repo):
    fetcher = Urllib3Fetcher(chunk_size=1000)
    chunks = list(fetcher.fetch(repo.url + "data.bin"))
    assert b"".join(chunks) == DATA
    assert max(len(c) for c in chunks) <= 1000
    assert len(chunks) >= len(DATA) // 1000


def test_one_byte_over_the_limit_fails(repo, make_fetcher):
    fetcher = make_fetcher()
    with _raises_named("DownloadLengthMismatchError"):
        fetcher.download_bytes(repo.url + "data.bin", len(DATA) - 1)


@pytest.mark.parametrize("status", [403, 404, 500, 503])
def test_http_error_status(repo, make_fetcher, status):
    repo.errors["small"] = status
    fetcher = make_fetcher()
    with _raises_named("DownloadHTTPError") as caught:
        fetcher.download_bytes(repo.url + "small", 100)
    assert caught.value.status_code == status


def test_missing_file_is_404(repo):
    with pytest.raises(exceptions.DownloadHTTPError) as caught:
        Urllib3Fetcher().download_bytes(repo.url + "nothing-here", 100)
    assert caught.value.status_code == 404


def test_endless_data_stops_early(repo, make_fetcher):
    repo.endless.add("data.bin")
    fetcher = make_fetcher()
    with _raises_named("DownloadLengthMismatchError"):
        fetcher.download_bytes(repo.url + "data.bin", 100000)
    # The client hung up long before the server's safety cap.
    assert repo.sent["data.bin"] < ENDLESS_CAP // 4


def test_endless_data_stops_early_download_file(repo):
    repo.endless.add("data.bin")
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        with Urllib3Fetcher().download_file(repo.url + "data.bin", 1000):
            pass  # pragma: no cover - never reached
    assert repo.sent["data.bin"] < ENDLESS_CAP // 4


def test_stalled_server_is_slow_retrieval(repo, make_fetcher):
    repo.stall["small"] = 5
    fetcher = make_fetcher(socket_timeout=0.3)
    with _raises_named("SlowRetrievalError"):
        fetcher.download_bytes(repo.url + "small", 100)



def test_stalled_server_is_not_retried(repo):
    """The timeout is not multiplied by urllib3's retries: one request."""
    import time

    repo.stall["small"] = 30
    start = time.monotonic()
    with pytest.raises(exceptions.SlowRetrievalError) as caught:
        Urllib3Fetcher(socket_timeout=0.5).download_bytes(repo.url + "small", 100)
    assert time.monotonic() - start < 1.5
    assert repo.count("small") == 1
    assert repo.url + "small" in str(caught.value)

def test_trickling_server_is_slow_retrieval(repo, make_fetcher):
    repo.trickle["small"] = 5
    fetcher = make_fetcher(socket_timeout=0.3)
    with _raises_named("SlowRetrievalError"):
        fetcher.download_bytes(repo.url + "small", 100)


def test_timeout_for_the_whole_download(repo):
    """A server dripping 1,000 bytes at 100 bytes/s (never idle for a
    socket timeout) fails at the overall timeout, not after 10 s: the
    default fetcher hands over each byte as it arrives (read1), so the
    deadline is checked during the drip, not only at its end."""
    repo.files["drip"] = b"x" * 1000
    repo.trickle["drip"] = 0.01
    start = time.monotonic()
    with pytest.raises(exceptions.SlowRetrievalError):
        Urllib3Fetcher().download_bytes(repo.url + "drip", 1000, timeout=0.5)
    assert time.monotonic() - start < 3
    assert repo.sent["drip"] < 1000


def test_connection_refused_is_download_error(repo):
    url = repo.url + "small"
    repo.stop()
    with pytest.raises(exceptions.DownloadError) as caught:
        Urllib3Fetcher(socket_timeout=2).download_bytes(url, 100)
    assert type(caught.value) is exceptions.DownloadError


def test_user_agent(repo):
    Urllib3Fetcher().download_bytes(repo.url + "small", 100)
    Urllib3Fetcher(app_user_agent="MyApp/2.1").download_bytes(
        repo.url + "small", 100
    )
    agents = [r.headers.get("User-Agent") for r in repo.requests]
    assert agents == [
        f"tufc/{tufc.__version__}",
        f"MyApp/2.1 tufc/{tufc.__version__}",
    ]


def test_body_is_not_decompressed(repo):
    """A gzip body is returned as sent: it cannot expand past a limit."""
    import gzip

    bomb = gzip.compress(b"\0" * 1_000_000)
    repo.files["bomb"] = bomb
    repo.headers["bomb"] = {"Content-Encoding": "gzip"}
    got = Urllib3Fetcher().download_bytes(repo.url + "bomb", len(bomb))
    assert got == bomb
    assert repo.requests[-1].headers.get("Accept-Encoding") == "identity"


def test_proxy_from_environment(repo, monkeypatch):
    """http_proxy is honoured (the test server answers as the proxy: it gets
    the absolute URL), and no_proxy bypasses it."""
    for name in ("http_proxy", "HTTP_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", repo.url)
    url = "http://tuf-repo.invalid/small"
    assert Urllib3Fetcher().download_bytes(url, 5) == b"hello"
    assert repo.requests[-1].raw_path == url
    monkeypatch.setenv("no_proxy", "tuf-repo.invalid")
    with pytest.raises(exceptions.DownloadError):
        Urllib3Fetcher(socket_timeout=2).download_bytes(url, 5)


def test_fetcher_reuses_connections_after_complete_reads(repo):
    fetcher = Urllib3Fetcher()
    for _ in range(3):
        assert fetcher.download_bytes(repo.url + "small", 5) == b"hello"


# --- the base class contract -------------------------------------------------


class ListFetcher(FetcherInterface):
    """Implements only ``_fetch``, as python-tuf fetchers do."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.pulled = 0
        self.closed = False

    def _fetch(self, url):
        def gen():
            try:
                for chunk in self.chunks:
                    self.pulled += 1
                    if isinstance(chunk, BaseException):
                        raise chunk
                    yield chunk
            finally:
                self.closed = True

        return gen()


def test_base_class_supplies_download_methods():
    fetcher = ListFetcher([b"ab", b"cd", b"e"])
    assert fetcher.download_bytes("x://y", 5) == b"abcde"
    with fetcher.download_file("x://y", 5) as f:
        assert f.read() == b"abcde"
    assert b"".join(fetcher.fetch("x://y")) == b"abcde"


def test_limit_stops_pulling_chunks_and_closes_source():
    def endless():
        while True:
            yield b"x" * 10

    fetcher = ListFetcher(endless())
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        fetcher.download_bytes("x://y", 95)
    assert fetcher.pulled == 10  # the chunk that crossed 95, no more
    assert fetcher.closed


@given(
    chunks=st.lists(st.binary(max_size=40), max_size=20),
    max_length=st.integers(min_value=0, max_value=400),
)
def test_limit_for_any_chunking(chunks, max_length):
    """Any chunking: the bytes joined when they fit; otherwise a
    DownloadLengthMismatchError after pulling exactly the chunk that
    crossed the limit, with the source closed."""
    fetcher = ListFetcher(chunks)
    total = sum(len(c) for c in chunks)
    if total <= max_length:
        assert fetcher.download_bytes("x://y", max_length) == b"".join(chunks)
        with fetcher.download_file("x://y", max_length) as f:
            assert f.read() == b"".join(chunks)
        return
    with pytest.raises(exceptions.DownloadLengthMismatchError):
        fetcher.download_bytes("x://y", max_length)
    running, crossing = 0, 0
    for crossing, chunk in enumerate(chunks, 1):
        running += len(chunk)
        if running > max_length:
            break
    assert fetcher.pulled == crossing
    assert fetcher.closed


class SlowListFetcher(ListFetcher):
    """Each chunk arrives ``pause`` seconds after the previous one."""

    def __init__(self, chunks, pause):
        super().__init__(chunks)
        self.pause = pause

    def _fetch(self, url):
        for chunk in super()._fetch(url):
            time.sleep(self.pause)
            yield chunk


def test_timeout_stops_pulling_chunks_and_closes_source():
    fetcher = SlowListFetcher([b"x"] * 100, 0.01)
    with pytest.raises(exceptions.SlowRetrievalError):
        fetcher.download_bytes("x://y", 100, timeout=0.2)
    assert 5 <= fetcher.pulled < 50
    assert fetcher.closed
    with pytest.raises(exceptions.SlowRetrievalError):
        with fetcher.download_file("x://y", 100, timeout=0.2):
            pass  # pragma: no cover - never reached


def test_timeout_checked_at_the_end():
    """A download whose last chunk came in time but which ended late."""

    class LateEnd(ListFetcher):
        def _fetch(self, url):
            yield b"x"
            time.sleep(0.3)

    with pytest.raises(exceptions.SlowRetrievalError):
        LateEnd([]).download_bytes("x://y", 10, timeout=0.1)


def test_no_timeout_means_none_and_fast_is_fine():
    fetcher = SlowListFetcher([b"ab", b"cd"], 0.01)
    assert fetcher.download_bytes("x://y", 4) == b"abcd"
    assert fetcher.download_bytes("x://y", 4, timeout=5) == b"abcd"


@given(
    gaps=st.lists(st.integers(min_value=0, max_value=10), max_size=12),
    end_gap=st.integers(min_value=0, max_value=10),
    timeout=st.integers(min_value=0, max_value=60),
)
def test_timeout_for_any_pacing(gaps, end_gap, timeout):
    """On a fake clock, chunk i arriving gaps[0] + ... + gaps[i] seconds
    after the start and the end end_gap later: SlowRetrievalError exactly
    when something arrives after the timeout, having pulled the chunk that
    was late and no more; otherwise all the bytes."""
    clock = [0]

    class Paced(ListFetcher):
        def _fetch(self, url):
            for gap in gaps:
                clock[0] += gap
                self.pulled += 1
                yield b"x"
            clock[0] += end_gap

    arrivals = [sum(gaps[: i + 1]) for i in range(len(gaps))] + [sum(gaps) + end_gap]
    late = [t > timeout for t in arrivals]
    fetcher = Paced([])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "monotonic", lambda: clock[0])  # for this call only
        if not any(late):
            data = fetcher.download_bytes("x://y", 100, timeout=timeout)
            assert data == b"x" * len(gaps)
            return
        with pytest.raises(exceptions.SlowRetrievalError):
            fetcher.download_bytes("x://y", 100, timeout=timeout)
    assert fetcher.pulled == min(late.index(True) + 1, len(gaps))


@pytest.mark.parametrize(
    "length, rate, grace, seconds",
    [(16384, 2048, 10, 18), (0, 2048, 10, 10), (1000, 100, 0, 10), (3, 2, 0.5, 2)],
)
def test_download_seconds(length, rate, grace, seconds):
    assert download_seconds(length, rate, grace) == seconds


def test_limit_exact_length_is_allowed():
    assert ListFetcher([b"x" * 10] * 3).download_bytes("x://y", 30) == b"x" * 30


def test_error_in_fetch_becomes_download_error():
    class Broken(FetcherInterface):
        def _fetch(self, url):
            raise ValueError("boom")

    with pytest.raises(exceptions.DownloadError) as caught:
        Broken().download_bytes("x://y", 10)
    assert isinstance(caught.value.__cause__, ValueError)


def test_error_while_iterating_becomes_download_error():
    fetcher = ListFetcher([b"ab", KeyError("deep inside")])
    with pytest.raises(exceptions.DownloadError):
        fetcher.download_bytes("x://y", 10)
    with pytest.raises(exceptions.DownloadError):
        list(fetcher.fetch("x://y"))


def test_non_bytes_chunk_is_download_error():
    with pytest.raises(exceptions.DownloadError):
        ListFetcher(["text"]).download_bytes("x://y", 10)


def test_python_tuf_exceptions_are_mapped():
    from tuf.api import exceptions as tuf_exceptions

    fetcher = ListFetcher([tuf_exceptions.DownloadHTTPError("gone", 404)])
    with pytest.raises(exceptions.DownloadHTTPError) as caught:
        fetcher.download_bytes("x://y", 10)
    assert caught.value.status_code == 404

    class Slow(FetcherInterface):
        def _fetch(self, url):
            raise tuf_exceptions.SlowRetrievalError("slow")

    with pytest.raises(exceptions.SlowRetrievalError):
        Slow().download_bytes("x://y", 10)


def test_subclass_may_not_skip_fetch():
    class NoFetch(FetcherInterface):
        pass

    with pytest.raises(TypeError):
        NoFetch()


# --- file:// -------------------------------------------------------------------


def test_file_url(tmp_path):
    (tmp_path / "a b.json").write_bytes(DATA)
    url = pathlib.Path(tmp_path, "a b.json").as_uri()
    for fetcher in (FileFetcher(), Urllib3Fetcher()):
        assert fetcher.download_bytes(url, len(DATA)) == DATA
        with pytest.raises(exceptions.DownloadLengthMismatchError):
            fetcher.download_bytes(url, len(DATA) - 1)


def test_file_url_missing_is_404(tmp_path):
    url = (tmp_path / "1.root.json").as_uri()
    with pytest.raises(exceptions.DownloadHTTPError) as caught:
        FileFetcher().download_bytes(url, 100)
    assert caught.value.status_code == 404


def test_file_url_quoted_separator_stays_inside(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (tmp_path / "x.json").write_bytes(b"outside")
    (mirror / "..%2Fx.json").write_bytes(b"inside")
    url = mirror.as_uri() + "/" + urllib.parse.quote("../x", safe="") + ".json"
    assert FileFetcher().download_bytes(url, 100) == b"inside"


def test_file_url_with_remote_host_refused():
    with pytest.raises(exceptions.DownloadError):
        FileFetcher().download_bytes("file://example.com/etc/passwd", 100)


def test_file_url_directory_is_download_error(tmp_path):
    with pytest.raises(exceptions.DownloadError):
        FileFetcher().download_bytes(tmp_path.as_uri(), 100)
