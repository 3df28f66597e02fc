"""Triggers: when a task with upstreams may run, judged from its upstreams' final states.

A trigger is a function `(states) -> bool` over the upstream states (futures among its
arguments and `wait_for`). False ends the task TriggerFailed without running it. A trigger may
also raise the task signals `Skip` or `Pause`. A task without upstreams is judged too, on an
empty list: every built-in trigger but `manual_only` is met by it.

Skipped counts as success; Failed, TimedOut, TriggerFailed, Cancelled and Crashed as failure.
An upstream wrapped in `allow_failure()` counts as success whatever its outcome.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from reflow.states import State
from reflow.task.signals import Pause

Trigger = Callable[[Sequence[State[Any]]], bool]


def _failed(state: State[Any]) -> bool:
    return state.is_final() and not state.is_completed()


def all_successful(states: Sequence[State[Any]]) -> bool:
    """Run when every upstream completed (Skipped and Cached included). The default."""
    return all(s.is_completed() for s in states)


def all_finished(states: Sequence[State[Any]]) -> bool:
    """Run whatever the upstreams' outcomes: for cleanup tasks."""
    return True


always_run = all_finished
"""Prefect 1's name for `all_finished`."""


def any_failed(states: Sequence[State[Any]]) -> bool:
    """Run when at least one upstream failed: for alerts and fallbacks."""
    return not states or any(_failed(s) for s in states)


def all_failed(states: Sequence[State[Any]]) -> bool:
    """Run only when every upstream failed."""
    return all(_failed(s) for s in states)


def any_successful(states: Sequence[State[Any]]) -> bool:
    """Run when at least one upstream completed."""
    return not states or any(s.is_completed() for s in states)


def manual_only(states: Sequence[State[Any]]) -> bool:
    """Never run on its own: pause the flow run here until it is resumed, then run."""
    raise Pause("manual_only: waits for the flow run to be resumed")


__all__ = [
    "Trigger",
    "all_failed",
    "all_finished",
    "all_successful",
    "always_run",
    "any_failed",
    "any_successful",
    "manual_only",
]
