"""Helpers shared by the retry tests: scripted flaky functions, run sync or async."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from reflow.retry import AttemptState
from tests._support import Script

__all__ = ["FAIL_THEN_SUCCEED_EVENTS", "Flavor", "Recorder", "Script", "spin"]


class Flavor:
    """Builds a sync or an async function from a `Script`, and calls a Retriable of it."""

    def __init__(self, is_async: bool) -> None:
        self.is_async = is_async

    def __repr__(self) -> str:
        return "async" if self.is_async else "sync"

    def function(self, script: Script) -> Callable[..., Any]:
        if self.is_async:

            async def attempt_async(*args: object, **kwargs: object) -> Any:
                await asyncio.sleep(0)  # a real suspension point, as real async code has
                return script.step()

            return attempt_async

        def attempt(*args: object, **kwargs: object) -> Any:
            return script.step()

        return attempt

    def call(self, fn: Callable[..., Any], *args: object, **kwargs: object) -> Any:
        if self.is_async:
            return asyncio.run(fn(*args, **kwargs))
        return fn(*args, **kwargs)


class Recorder:
    """A hook that records (phase, attempt, wait_seconds) for every state it is given."""

    def __init__(self) -> None:
        self.events: list[tuple[str, int, float]] = []
        self.states: list[AttemptState] = []

    def __call__(self, state: AttemptState) -> None:
        self.states.append(state)
        self.events.append((state.phase.value, state.attempt, state.wait_seconds))

    def phases(self) -> list[str]:
        return [phase for phase, _, _ in self.events]


FAIL_THEN_SUCCEED_EVENTS = [
    ("before_attempt", 1, 0.0),
    ("on_failure", 1, 0.0),
    ("before_wait", 1, 1.0),
    ("after_wait", 1, 1.0),
    ("before_attempt", 2, 0.0),
    ("on_success", 2, 0.0),
]
"""The hook calls of a call that fails once then succeeds, with wait=1."""


def spin() -> None:
    """A Python loop that checks nothing and never ends: only an interrupt stops it."""
    while True:
        pass
