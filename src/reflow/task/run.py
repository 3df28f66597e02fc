"""`TaskRun`: the record of one call of a task, handed to hooks as `run`."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from reflow._ids import new_ordered_id
from reflow.states import State

if TYPE_CHECKING:
    from reflow.task.decorator import Task


@dataclass(slots=True)
class AttemptRecord:
    """One attempt of a task run: its number, times (epoch seconds) and outcome state."""

    number: int
    started: float
    ended: float | None = None
    state: State[Any] | None = None
    """Completed, Skipped, Failed or TimedOut once the attempt is over."""


class TaskRun:
    """One call of a task: its id, full state history, attempts and hook errors."""

    __slots__ = (
        "_parameters",
        "args",
        "attempts",
        "cache_key",
        "hook_errors",
        "id",
        "invoke",
        "key",
        "kwargs",
        "parent_id",
        "persist_result",
        "resumed",
        "skip",
        "states",
        "task",
        "task_name",
        "upstream",
    )

    def __init__(self, task: Task[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]):
        self.id = new_ordered_id()
        self.task = task
        self.task_name = task.name
        self.args = args
        self.kwargs = kwargs
        self.states: list[State[Any]] = []
        """Every state the run went through, in order."""
        self.attempts: list[AttemptRecord] = []
        self.hook_errors: list[BaseException] = []
        """Errors raised by hooks and state handlers: logged, kept here, outcome unchanged."""
        self.cache_key: str | None = None
        self.skip: Any = None  # the Skip signal of the current attempt, if it raised one
        self._parameters: dict[str, Any] | None = None
        # Set by the flow layer for runs inside a flow run:
        self.parent_id: str | None = None
        """The flow run this run belongs to."""
        self.key: str | None = None
        """The call's key in its flow run: task name, call number and map index."""
        self.upstream: tuple[str, ...] = ()
        """Ids of the runs this one waited for (futures in its arguments and `wait_for`)."""
        self.resumed = False
        """Whether this run resumes a paused one (its flow run was resumed)."""
        self.persist_result: bool | None = task.persist_result
        """False: its result is never written to a store (its task's `persist_result=False`,
        or, for a task that does not say, its flow's)."""
        self.invoke: Callable[[Callable[..., Any], tuple[Any, ...], dict[str, Any]], Any] | None
        self.invoke = None  # how an attempt calls the function (elsewhere, for a process pool)

    @property
    def state(self) -> State[Any]:
        """The current (after the call: final) state."""
        return self.states[-1]

    @property
    def parameters(self) -> dict[str, Any]:
        """The call's arguments by parameter name, defaults applied."""
        if self._parameters is None:
            bound = inspect.signature(self.task.fn).bind(*self.args, **self.kwargs)
            bound.apply_defaults()
            self._parameters = dict(bound.arguments)
        return self._parameters

    def __repr__(self) -> str:
        shown = self.states[-1].name if self.states else "new"
        return f"<TaskRun {self.task_name} {self.id[:8]} {shown}, {len(self.attempts)} attempt(s)>"
