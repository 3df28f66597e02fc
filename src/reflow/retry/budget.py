"""`RetryBudget`: cap retries to a fraction of calls so an outage does not become a retry storm."""

from __future__ import annotations

import threading

from reflow.retry import _clock


class RetryBudget:
    """A budget of retries shared by every Retriable it is given to.

    Over a sliding window of `window` seconds, retries may number at most
    `min_per_second * window + ratio * calls`. With the defaults, a healthy service gets all the
    retries it needs, while during an outage at most 10 % extra load (plus 10 retries a second)
    is added. A retry refused by the budget ends retrying with the original exception.
    """

    __slots__ = ("_buckets", "_lock", "min_per_second", "ratio", "window")

    def __init__(self, ratio: float = 0.1, min_per_second: float = 10.0, window: int = 10) -> None:
        for name, value in (("ratio", ratio), ("min_per_second", min_per_second)):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a number, got {value!r}")
            if not 0 <= value < float("inf"):
                raise ValueError(f"{name} must be 0 or more and finite, got {value!r}")
        if isinstance(window, bool) or not isinstance(window, int):
            raise TypeError(f"window must be a whole number of seconds, got {window!r}")
        if window < 1:
            raise ValueError(f"window must be at least 1 second, got {window!r}")
        self.ratio = float(ratio)
        self.min_per_second = float(min_per_second)
        self.window = window
        # second -> [calls, retries]; pruned to the window on every update.
        self._buckets: dict[int, list[int]] = {}
        self._lock = threading.Lock()

    def _bucket(self) -> list[int]:
        now = int(_clock.monotonic())
        buckets = self._buckets
        bucket = buckets.get(now)
        if bucket is None:
            oldest = now - self.window + 1
            for second in [s for s in buckets if s < oldest]:
                del buckets[second]
            bucket = buckets[now] = [0, 0]
        return bucket

    def record_call(self) -> None:
        """Count one call (each call, not each attempt, earns `ratio` retries)."""
        with self._lock:
            self._bucket()[0] += 1

    def try_spend(self) -> bool:
        """Take one retry from the budget; False when the budget is spent."""
        with self._lock:
            bucket = self._bucket()
            calls = sum(b[0] for b in self._buckets.values())
            retries = sum(b[1] for b in self._buckets.values())
            if retries + 1 > self.min_per_second * self.window + self.ratio * calls:
                return False
            bucket[1] += 1
            return True

    def __repr__(self) -> str:
        return (
            f"RetryBudget(ratio={self.ratio:g}, min_per_second={self.min_per_second:g}, "
            f"window={self.window})"
        )
