"""Where a task call is running: the seam the flow layer plugs into.

The task layer never imports the flow layer. A flow sets `runner` for the code it runs; a task
called, submitted or mapped while a runner is set hands the call to it. `task_run` is the run
whose code is executing, for `reflow.get_run_logger()` and `reflow.get_run_context()`.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from reflow.task.decorator import Task
    from reflow.task.futures import Future, FutureList
    from reflow.task.run import TaskRun


class TaskRunner(Protocol):
    """What runs task calls inside a flow run (the flow engine implements it)."""

    def call(self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the task now in this thread; return its value (or state), or raise."""
        ...

    async def call_async(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run the async task now on this event loop; return its value (or state), or raise."""
        ...

    def call_from_sync(
        self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Any:
        """Run the async task to its end from sync code in the flow; return its value or raise."""
        ...

    def submit(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any],
    ) -> Future[Any]:
        """Start a run of the task once its upstreams are done; return its future at once."""
        ...

    def map(
        self,
        task: Task[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        wait_for: Iterable[Any],
    ) -> FutureList[Any]:
        """Submit one run per element of the mapped arguments (zip semantics)."""
        ...


runner: ContextVar[TaskRunner | None] = ContextVar("reflow_runner", default=None)
task_run: ContextVar[TaskRun | None] = ContextVar("reflow_task_run", default=None)
