"""Errors of the flow layer, each saying what happened and what to do about it."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reflow.flow.run import FlowRun


class TriggerFailedError(Exception):
    """A task did not run: its trigger was not met by its upstreams' final states."""


class ParameterError(TypeError):
    """A flow was called with a parameter that is missing, unknown, or fails its type hint.

    Raised before any task runs; `parameter` names the culprit (None when the call itself is
    wrong, e.g. too many positional arguments).
    """

    def __init__(self, message: str, parameter: str | None = None) -> None:
        super().__init__(message)
        self.parameter = parameter


class FlowPaused(Exception):
    """The flow run paused (a task raised `Pause`, or a `manual_only` trigger waits).

    `flow_run.resume()` (or `await flow_run.resume_async()`) carries it on in this process.
    """

    def __init__(self, flow_run: FlowRun) -> None:
        paused = [r.task_name for r in flow_run.task_runs if r.state.is_paused()]
        which = f" at {', '.join(paused)}" if paused else ""
        super().__init__(
            f"flow run {flow_run.name} ({flow_run.id[:8]}) paused{which}; resume it with "
            "flow_run.resume()"
        )
        self.flow_run = flow_run
