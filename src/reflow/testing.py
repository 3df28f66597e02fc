"""Test helpers: a virtual clock so retry schedules are asserted without sleeping.

    with reflow.testing.instant() as clock:
        fetch()                      # every wait returns at once
    assert clock.waits == [0.1, 0.2]

Under `pytest` the `reflow_clock` fixture does the same for one test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from reflow.retry import _clock


class VirtualClock:
    """A clock whose time moves only when something waits on it or a test calls `advance()`."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._lock = threading.Lock()
        self.waits: list[float] = []
        """Every wait asked for, in seconds, in the order asked."""

    @property
    def now(self) -> float:
        """The current virtual time in seconds."""
        return self._now

    @property
    def total_wait(self) -> float:
        """The sum of the waits asked for."""
        return sum(self.waits)

    def advance(self, seconds: float) -> None:
        """Move time forward, as if code ran for `seconds` (to test deadlines)."""
        if seconds < 0:
            raise ValueError(f"time only moves forward; advance() got {seconds!r}")
        with self._lock:
            self._now += seconds

    def monotonic(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits.append(seconds)
            self._now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)  # still yield to the loop, as a real sleep would


@contextmanager
def instant(start: float = 0.0) -> Iterator[VirtualClock]:
    """Make every retry wait return at once and record it; time is virtual inside the block.

    Applies to every Retriable and `attempting()` loop, including ones created before. Per-attempt
    timeouts still use real time: they bound real work.
    """
    clock = VirtualClock(start)
    saved = (_clock.monotonic, _clock.sleep, _clock.async_sleep)
    _clock.monotonic, _clock.sleep, _clock.async_sleep = (
        clock.monotonic, clock.sleep, clock.async_sleep
    )  # fmt: skip
    try:
        yield clock
    finally:
        _clock.monotonic, _clock.sleep, _clock.async_sleep = saved


__all__ = ["VirtualClock", "instant"]
