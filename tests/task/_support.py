"""Helpers shared by the task tests: scripted flaky functions run as sync or async tasks."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

from reflow.states import State
from reflow.task import Task, TaskRun
from tests._support import Script

__all__ = ["Flavor", "Recorder", "Script", "names"]


class Flavor:
    """Makes a sync or an `async def` function, and calls a task of it to the end."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    def function(self, script: Script) -> Callable[..., Any]:
        """A function playing `script`, whatever its arguments."""

        def attempt(*args: object, **kwargs: object) -> Any:
            return script.step()

        return self.wrap(attempt)

    def wrap(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        """`fn` itself, or an `async def` twin with the same signature that calls it."""
        if not self.is_async:
            return fn

        @functools.wraps(fn)
        async def twin(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)  # a real suspension point, as real async code has
            return fn(*args, **kwargs)

        return twin

    def call(self, t: Task[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.is_async:
            return asyncio.run(t(*args, **kwargs))
        return t(*args, **kwargs)

    def state(self, t: Task[..., Any], *args: Any, **kwargs: Any) -> State[Any]:
        """The final state of a call (`return_state=True`)."""
        state: State[Any] = self.call(t, *args, return_state=True, **kwargs)
        return state


class Recorder:
    """A task hook recording `(kind, state name, attempt)` and the runs it was given.

    `recorder.hook("on_retry")` is a hook for one kind; `recorder.hooks()` gives the keyword
    arguments registering it for every kind. Hooks are async when `is_async`.
    """

    KINDS = ("on_running", "on_retry", "on_completion", "on_failure")

    def __init__(self, is_async: bool = False) -> None:
        self.is_async = is_async
        self.events: list[tuple[str, str, int]] = []
        self.runs: list[TaskRun] = []
        self.tasks: list[Task[..., Any]] = []

    def hook(self, kind: str) -> Callable[..., Any]:
        def record(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
            self.tasks.append(t)
            self.runs.append(run)
            self.events.append((kind, state.name, state.attempt))

        if not self.is_async:
            return record

        async def record_async(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
            await asyncio.sleep(0)
            record(t, run, state)

        return record_async

    def hooks(self) -> dict[str, Any]:
        return {kind: self.hook(kind) for kind in self.KINDS}

    @property
    def run(self) -> TaskRun:
        """The run the hooks saw (every call recorded must be of one run)."""
        assert self.runs, "no hook was called"
        assert all(r is self.runs[0] for r in self.runs)
        return self.runs[0]


def names(states: list[State[Any]]) -> list[str]:
    return [s.name for s in states]


FAIL_THEN_SUCCEED = [
    ("on_running", "Running", 1),
    ("on_retry", "AwaitingRetry", 1),
    ("on_running", "Retrying", 2),
    ("on_completion", "Completed", 2),
]
"""The hook calls of a task with retries=1 that fails once, then succeeds."""


def spin(seconds: float = 5.0) -> None:
    """A Python loop that only a timeout interrupt ends early (bounded, in case none comes)."""
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
