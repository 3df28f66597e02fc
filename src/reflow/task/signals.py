"""Signals a task raises to choose its own end: skip, fail without retrying, or retry."""

from __future__ import annotations

from typing import Any


class Signal(Exception):
    """Base class of the signals a task may raise."""

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Skip(Signal):
    """End the task run as Skipped (a completed state) with `result`; never retried."""

    def __init__(self, message: str = "", result: Any = None) -> None:
        super().__init__(message)
        self.result = result


class Fail(Signal):
    """End the task run as Failed at once, whatever retries remain."""


class Retry(Signal):
    """Retry the task run if retries remain, whatever `retry_on` and `retry_condition_fn` say."""


BAD_CALL = "_reflow_bad_call"


def is_bad_call(exc: Exception) -> bool:
    """Whether `exc` is a TypeError from calling a task with arguments that do not fit it."""
    return getattr(exc, BAD_CALL, False) is True
