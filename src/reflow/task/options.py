"""Prefect-compatible retry options of a task, turned into a `reflow.retry` wait."""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from datetime import timedelta

from reflow.retry import AttemptState, waits
from reflow.retry.durations import to_seconds
from reflow.retry.waits import Wait

RetryDelay = (
    float | int | timedelta | Sequence[float | int | timedelta] | Callable[[int], Sequence[float]]
)


def exponential_backoff(backoff_factor: float) -> Callable[[int], list[float]]:
    """Delays `backoff_factor * 2 ** n` for the n-th retry, for `retry_delay_seconds=`."""
    factor = to_seconds(backoff_factor, "backoff_factor")

    def delays(retries: int) -> list[float]:
        return [factor * 2**n for n in range(min(retries, 50))]

    delays.__qualname__ = f"exponential_backoff({factor:g})"
    return delays


def delay_wait(retry_delay_seconds: RetryDelay, retries: int) -> Wait:
    """The wait between retries: a number, a list (the last repeats) or `f(retries) -> list`."""
    value = retry_delay_seconds
    if isinstance(value, Wait):
        return value  # a reflow.retry.waits strategy
    if callable(value):
        value = value(retries)
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            raise TypeError(
                "a callable retry_delay_seconds takes the number of retries and returns a list "
                f"of delays (like exponential_backoff(2)); it returned {value!r}"
            )
        if not value:
            return waits.fixed(0)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        return waits.sequence(
            [to_seconds(v, f"retry_delay_seconds[{i}]") for i, v in enumerate(value)]
        )
    return waits.fixed(to_seconds(value, "retry_delay_seconds"))


class Jittered(Wait):
    """Spread each delay `d` uniformly over `[d * (1 - min(f, 1)), d * (1 + f)]`.

    Never above `(1 + f) * d`; the mean stays `d` for `f <= 1`.
    """

    __slots__ = ("factor", "inner")

    def __init__(self, inner: Wait, factor: float) -> None:
        self.inner = inner
        self.factor = factor

    def __call__(self, state: AttemptState) -> float:
        delay = self.inner(state)
        low = delay * (1 - min(self.factor, 1.0))
        return random.uniform(low, delay * (1 + self.factor))

    def __repr__(self) -> str:
        return f"{self.inner!r} with retry_jitter_factor={self.factor:g}"


def check_jitter_factor(value: float | None) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < 1e6:
        raise ValueError(f"retry_jitter_factor must be a number of 0 or more, got {value!r}")
    return float(value)
