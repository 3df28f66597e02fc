"""Signals a task raises to choose its own end: skip, fail or pause without retrying, or retry."""

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


class Pause(Signal):
    """Pause the flow run at this task until the run is resumed; never retried.

    The task run ends Paused; when the flow run resumes, the task runs again, and
    `reflow.get_run_context().task_run.resumed` is True for that call. Outside a flow there
    is nothing to pause: the call raises this signal.
    """


class PauseFlow(BaseException):
    """Raised in a flow's code to stop it where it would need a paused task's result.

    A BaseException, so `except Exception` in the flow does not swallow it and nothing retries
    it; the flow engine catches it and ends the flow run Paused.
    """


BAD_CALL = "_reflow_bad_call"


def is_bad_call(exc: BaseException) -> bool:
    """Whether `exc` is a TypeError from calling a task with arguments that do not fit it."""
    return getattr(exc, BAD_CALL, False) is True


CRASH = "_reflow_crash"


def mark_crash(exc: BaseException) -> BaseException:
    """Mark `exc` as the loss of the place an attempt ran (a worker process killed, a cluster
    worker gone): the attempt ends Crashed, and it is retried if retries remain."""
    setattr(exc, CRASH, True)
    return exc


def is_crash(exc: BaseException) -> bool:
    """Whether `exc` says the attempt's worker was lost rather than the task failing."""
    return getattr(exc, CRASH, False) is True
