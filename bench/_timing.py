"""Timing and table helpers shared by the benchmarks in bench/.

Every figure is measured side by side with its reference in the same run:
implementations of one figure are timed in alternating order, best of N
repeats after a warm-up, so slow drift on a shared machine hits all of them
alike.  An implementation that is not built yet (or gives a wrong answer)
is reported as such instead of a number.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable, Optional

NA = "n/a (not built yet)"


class Unavailable(Exception):
    """An implementation cannot be measured (not built yet, wrong result)."""


@dataclass
class Result:
    name: str
    seconds: Optional[float] = None  # best time of one operation
    note: str = ""  # why there is no figure, or a remark

    @property
    def ok(self) -> bool:
        return self.seconds is not None


def describe_failure(exc: BaseException) -> str:
    """A short reason an implementation could not be measured."""
    if isinstance(exc, Unavailable):
        return str(exc)
    if isinstance(exc, (ImportError, NotImplementedError, AttributeError)):
        return NA
    text = f"{type(exc).__name__}: {exc}"
    return f"n/a ({text[:70]})"


# The clock compare() uses.  Process CPU time by default: every core figure
# is single-threaded CPU work, and CPU time does not count the moments
# another process on a shared machine holds the core.  bench/core.py --wall
# switches to wall-clock time.
clock = time.process_time


def _time_number(fn: Callable[[], object], number: int) -> float:
    start = clock()
    for _ in range(number):
        fn()
    return clock() - start


def _calibrate(fn: Callable[[], object], min_time: float) -> int:
    """How many calls make one repeat last at least ``min_time`` seconds."""
    if min_time <= 0:
        return 1
    number = 1
    while True:
        elapsed = _time_number(fn, number)
        if elapsed >= min_time:
            return number
        if elapsed <= 0:
            number *= 10
            continue
        number = max(number * 2, int(number * min_time / elapsed * 1.2) + 1)


def compare(
    candidates: list[tuple[str, Callable[[], Callable[[], object]]]],
    repeat: int = 5,
    min_time: float = 0.2,
) -> list[Result]:
    """Best time per call of each candidate, timed in alternating order.

    Each candidate is ``(name, factory)``; the factory does the setup (and
    checks the answer is right) and returns the zero-argument callable to
    time, or raises when the implementation cannot be measured.
    """
    results = [Result(name) for name, _ in candidates]
    runnable = []  # (index, callable, calls per repeat)
    for index, (_, factory) in enumerate(candidates):
        try:
            fn = factory()
            fn()  # warm-up
            number = _calibrate(fn, min_time)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            results[index].note = describe_failure(exc)
            continue
        runnable.append((index, fn, number))
    best = {index: float("inf") for index, _, _ in runnable}
    for rep in range(repeat):
        # Rotate the order each repeat so no implementation always goes first.
        shift = rep % max(len(runnable), 1)
        for index, fn, number in runnable[shift:] + runnable[:shift]:
            per_call = _time_number(fn, number) / number
            best[index] = min(best[index], per_call)
    for index, _, _ in runnable:
        results[index].seconds = best[index]
    return results


def format_table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table, columns left-aligned except numbers."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells):
        out = []
        for i, cell in enumerate(cells):
            numeric = cell[:1].isdigit() and i > 0
            out.append(cell.rjust(widths[i]) if numeric else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep] + [line(r) for r in rows])


def ratio_text(value: Optional[float], reference: Optional[float]) -> str:
    """``value / reference`` as ``12.3x``, or ``-`` when either is missing."""
    if value is None or reference is None or reference == 0:
        return "-"
    return f"{value / reference:.2f}x"
