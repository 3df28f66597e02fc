"""Exceptions the retry layer defines for its users."""

from __future__ import annotations


class StopRetrying(Exception):
    """Raise from a hook to make the current attempt the last one.

    From `on_failure` or `before_wait` retrying ends at once and the attempt's exception is
    raised; from `before_attempt` or `after_wait` the coming attempt runs as the last one.
    A message, if given, is the reason the give-up note shows.
    """


class AttemptTimeout(TimeoutError):
    """An attempt ran past its per-attempt `timeout`; it counts as a failed attempt."""


def attempt_timeout(seconds: float, interrupted: BaseException | None = None) -> AttemptTimeout:
    """The AttemptTimeout of an attempt, keeping the traceback of where it was interrupted."""
    exc = AttemptTimeout(f"attempt timed out after {seconds:.3g} s")
    if interrupted is not None:
        exc = exc.with_traceback(interrupted.__traceback__)
    return exc
