"""`get_run_context()` and `get_run_logger()`: which run is executing, and a logger that says so.

Records from `get_run_logger()` carry `flow_run_id`, `flow_name`, `task_run_id` and
`task_name` attributes (None where there is no such run), for formatters, filters and, later,
the run store: `logging.Formatter("%(flow_name)s/%(task_name)s: %(message)s")`.
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from reflow.flow.run import FlowRun
from reflow.task import context
from reflow.task.run import TaskRun


@dataclass(frozen=True, slots=True)
class RunContext:
    """The runs the current code belongs to: a flow run, a task run, or both."""

    flow_run: FlowRun | None
    task_run: TaskRun | None


def get_run_context() -> RunContext:
    """The flow run and task run executing this code; RuntimeError outside any run."""
    flow_run = getattr(context.runner.get(), "flow_run", None)
    task_run = context.task_run.get()
    if flow_run is None and task_run is None:
        raise RuntimeError(
            "get_run_context() is called outside any run: call it from the code of a "
            "@reflow.flow or a @reflow.task while it runs"
        )
    return RunContext(flow_run, task_run)


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the run's ids and names to every record it logs."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def get_run_logger(name: str | None = None) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for the running flow or task (logger `reflow.runs`, or `name`) whose records
    carry the run ids. RuntimeError outside any run."""
    ctx = get_run_context()
    flow_run, task_run = ctx.flow_run, ctx.task_run
    extra = {
        "flow_run_id": flow_run.id if flow_run else None,
        "flow_name": flow_run.name if flow_run else None,
        "task_run_id": task_run.id if task_run else None,
        "task_name": task_run.task_name if task_run else None,
    }
    return RunLoggerAdapter(logging.getLogger(name or "reflow.runs"), extra)
