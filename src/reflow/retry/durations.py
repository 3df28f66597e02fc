"""Coercion of user-given durations: every duration is a number of seconds or a `timedelta`."""

from __future__ import annotations

import math
from datetime import timedelta

Duration = float | int | timedelta


def to_seconds(value: object, argument: str, *, allow_zero: bool = True) -> float:
    """Return `value` as non-negative seconds, or raise naming `argument`.

    Raised at decoration time so a bad configuration never waits for the first failure to show.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TypeError(
            f"{argument} must be a number of seconds or a datetime.timedelta, "
            f"got {type(value).__name__} {value!r}"
        )
    if math.isinf(seconds):
        hint = "; leave it out (None) for no limit" if argument in ("deadline", "timeout") else ""
        raise ValueError(f"{argument} must be finite{hint}")
    if math.isnan(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "zero or more" if allow_zero else "more than zero"
        raise ValueError(f"{argument} must be {bound} seconds, got {value!r}")
    return seconds
