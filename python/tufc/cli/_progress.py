"""The download progress bar (on stderr, only when it is a terminal)."""

from __future__ import annotations

import sys


class Progress:
    """A one-line progress bar on stderr."""

    def __init__(self):
        self.name = ""
        self.total = 0
        self.done = 0
        self.active = False

    def start(self, name: str, total: int) -> None:
        self.name, self.total, self.done, self.active = name, total, 0, True
        self._draw()

    def advance(self, count: int) -> None:
        if self.active:
            self.done += count
            self._draw()

    def _draw(self) -> None:
        width = 30
        fraction = min(1.0, self.done / self.total) if self.total else 1.0
        bar = "#" * int(width * fraction)
        sys.stderr.write(
            f"\r{self.name[:30]:30} [{bar:{width}}] {fraction:4.0%} "
            f"{self.done}/{self.total} B"
        )
        sys.stderr.flush()

    def finish(self) -> None:
        if self.active:
            sys.stderr.write("\n")
            self.active = False


def progress_fetcher(progress: Progress):
    """A fetcher that reports target download progress to ``progress``."""
    from ..fetcher import FetcherInterface, Urllib3Fetcher

    class ProgressFetcher(FetcherInterface):
        def __init__(self):
            self._inner = Urllib3Fetcher()

        def _fetch(self, url: str):
            for chunk in self._inner.fetch(url):
                progress.advance(len(chunk))
                yield chunk

    return ProgressFetcher()
