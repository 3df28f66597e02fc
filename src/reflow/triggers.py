"""`reflow.triggers`: when a task with upstreams may run (see `reflow.flow.triggers`)."""

from reflow.flow.triggers import (
    Trigger,
    all_failed,
    all_finished,
    all_successful,
    always_run,
    any_failed,
    any_successful,
    manual_only,
)

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
