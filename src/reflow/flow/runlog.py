"""`get_run_context()` and `get_run_logger()`: which run is executing, and a logger that says so.

Records from `get_run_logger()` carry `flow_run_id`, `flow_name`, `task_run_id` and
`task_name` attributes (None where there is no such run), for formatters, filters and, later,
the run store: `logging.Formatter("%(flow_name)s/%(task_name)s: %(message)s")`.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, MutableMapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from reflow.flow.run import FlowRun
from reflow.task import context
from reflow.task.run import TaskRun


@dataclass(frozen=True, slots=True)
class RemoteIds:
    """Which runs an attempt shipped to another process belongs to."""

    flow_run_id: str
    flow_name: str
    task_run_id: str
    task_name: str


_remote: ContextVar[RemoteIds | None] = ContextVar("reflow_remote_run", default=None)


class RemoteCall:
    """An attempt's function wrapped for a worker process, where there is no flow engine:
    `get_run_logger()` still knows the run ids there."""

    def __init__(self, fn: Any, ids: RemoteIds) -> None:
        self.fn = fn
        self.ids = ids
        functools.update_wrapper(self, fn)  # executors may name jobs after the function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        token = _remote.set(self.ids)
        try:
            return self.fn(*args, **kwargs)
        finally:
            _remote.reset(token)


def in_shipped_attempt() -> bool:
    """Whether this code runs in a task attempt shipped to a worker process (ProcessExecutor,
    Dask): a flow called there is kept in memory unless it names its store."""
    return _remote.get() is not None


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
        if _remote.get() is not None:
            raise RuntimeError(
                "get_run_context() is not available in a worker process (the run records stay "
                "in the flow's process); get_run_logger() is"
            )
        raise RuntimeError(
            "get_run_context() is called outside any run: call it from the code of a "
            "@reflow.flow or a @reflow.task while it runs"
        )
    return RunContext(flow_run, task_run)


LogSink = Callable[[logging.LogRecord], None]

sinks: tuple[LogSink, ...] = ()
"""Where run loggers' records go besides logging's own handlers (the store's writer keeps the
records of the runs it keeps); replaced whole, so emitting never locks."""


def add_sink(sink: LogSink) -> None:
    """Hand every record of a run logger to `sink` (a quick function: append to a queue)."""
    global sinks
    sinks = (*sinks, sink)


def remove_sink(sink: LogSink) -> None:
    """Stop handing records to `sink`. Compared by equality, not identity: a bound method
    (`recorder._on_log`) is a new object each time it is read, but an equal one."""
    global sinks
    sinks = tuple(s for s in sinks if s != sink)


class _ToSinks(logging.Handler):
    """The handler on every run logger that passes its records to the `sinks`."""

    def emit(self, record: logging.LogRecord) -> None:
        for sink in sinks:
            try:
                sink(record)
            except Exception:
                self.handleError(record)


_to_sinks = _ToSinks()
_with_sinks: set[str] = set()


def _run_logger(name: str | None) -> logging.Logger:
    """The logger `name` (default `reflow.runs`, at INFO unless a level was set), with the
    handler that hands its records to the sinks."""
    name = name or "reflow.runs"
    logger = logging.getLogger(name)
    if name not in _with_sinks:
        _with_sinks.add(name)
        logger.addHandler(_to_sinks)
        if name == "reflow.runs" and logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)  # run logs are meant to be seen, and kept
    return logger


class RunLoggerAdapter(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Adds the run's ids and names to every record it logs."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


def get_run_logger(name: str | None = None) -> logging.LoggerAdapter:  # type: ignore[type-arg]
    """A logger for the running flow or task (logger `reflow.runs`, or `name`) whose records
    carry the run ids. RuntimeError outside any run."""
    remote = _remote.get()
    if remote is not None and context.task_run.get() is None:
        extra: dict[str, str | None] = {
            "flow_run_id": remote.flow_run_id,
            "flow_name": remote.flow_name,
            "task_run_id": remote.task_run_id,
            "task_name": remote.task_name,
        }
        return RunLoggerAdapter(_run_logger(name), extra)
    ctx = get_run_context()
    flow_run, task_run = ctx.flow_run, ctx.task_run
    extra = {
        "flow_run_id": flow_run.id if flow_run else None,
        "flow_name": flow_run.name if flow_run else None,
        "task_run_id": task_run.id if task_run else None,
        "task_name": task_run.task_name if task_run else None,
    }
    return RunLoggerAdapter(_run_logger(name), extra)
