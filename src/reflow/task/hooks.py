"""Calling a task's hooks `(task, run, state)` and state handlers `(task, old, new)`.

Errors in hooks are logged with their traceback, kept in `run.hook_errors`, and never change
the outcome. Hooks may be async; state handlers are sync, since they decide a state in place.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from reflow.retry.hooks import check_hooks, run_awaitable
from reflow.states import State

if TYPE_CHECKING:
    from reflow.task.decorator import Task
    from reflow.task.run import TaskRun

logger = logging.getLogger("reflow.task")

TaskHook = Callable[["Task[..., Any]", "TaskRun", State[Any]], object]
StateHandler = Callable[["Task[..., Any]", "State[Any] | None", State[Any]], "State[Any] | None"]


def check_callables(
    value: Any, argument: str, signature: str = "(task, run, state)", *, allow_async: bool = True
) -> tuple[Any, ...]:
    """Hooks given as one function or a list, checked when the task is made."""
    items = check_hooks(value, argument, signature)
    for item in items:
        if not allow_async and inspect.iscoroutinefunction(item):
            raise TypeError(
                f"{argument} must be plain functions: {item.__qualname__} is async, and a state "
                "handler decides the next state on the spot"
            )
    return items


def _record(run: TaskRun, what: str, fn: Any, state: State[Any], error: Exception) -> None:
    run.hook_errors.append(error)
    logger.error(
        "reflow: the %s %s of task %s raised on %s; the run goes on as if it had returned",
        what, getattr(fn, "__qualname__", fn), run.task_name, state.name,
        exc_info=(type(error), error, error.__traceback__),
    )  # fmt: skip


def fire_sync(
    task: Task[..., Any], hooks: Iterable[TaskHook], run: TaskRun, state: State[Any]
) -> None:
    for hook in hooks:
        try:
            outcome = hook(task, run, state)
            if inspect.isawaitable(outcome):
                run_awaitable(outcome)
        except Exception as error:
            _record(run, "hook", hook, state, error)


async def fire_async(
    task: Task[..., Any], hooks: Iterable[TaskHook], run: TaskRun, state: State[Any]
) -> None:
    for hook in hooks:
        try:
            outcome = hook(task, run, state)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception as error:
            _record(run, "hook", hook, state, error)


def apply_handlers(
    task: Task[..., Any], handlers: Iterable[StateHandler], run: TaskRun, new: State[Any]
) -> State[Any]:
    """Run the state handlers on a transition; each may return a state to replace `new`."""
    old = run.states[-1] if run.states else None
    for handler in handlers:
        try:
            replaced = handler(task, old, new)
            if replaced is not None:
                if not isinstance(replaced, State):
                    raise TypeError(
                        f"a state handler must return a State or None, got {replaced!r}"
                    )
                new = replaced
        except Exception as error:
            _record(run, "state handler", handler, new, error)
    return new
