"""Run states shared by tasks, flows and atoms: what a run is doing, and how it ended.

A `State` is an immutable record: a `type` (the kind of state, `StateType`), a `name` (the
specific state: Retrying is a RUNNING type, Cached and Skipped are COMPLETED types, TimedOut and
TriggerFailed are FAILED types), a timestamp, a message, and the result or exception. Build them
with the constructors named after each state: `Completed(result)`, `Failed(exc)`, ...
"""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from datetime import datetime

R = TypeVar("R")


class StateType(enum.Enum):
    """The kind of a state; final kinds end a run."""

    PENDING = "PENDING"
    SCHEDULED = "SCHEDULED"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    CRASHED = "CRASHED"
    PAUSED = "PAUSED"


FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CANCELLED, StateType.CRASHED}
)

STATE_TYPES: dict[str, StateType] = {
    "Pending": StateType.PENDING,
    "Scheduled": StateType.SCHEDULED,
    "AwaitingRetry": StateType.SCHEDULED,
    "Running": StateType.RUNNING,
    "Retrying": StateType.RUNNING,
    "Reverting": StateType.RUNNING,
    "Completed": StateType.COMPLETED,
    "Cached": StateType.COMPLETED,
    "Skipped": StateType.COMPLETED,
    "RolledBack": StateType.COMPLETED,
    "Failed": StateType.FAILED,
    "TimedOut": StateType.FAILED,
    "TriggerFailed": StateType.FAILED,
    "Cancelled": StateType.CANCELLED,
    "Reverted": StateType.CANCELLED,
    "Crashed": StateType.CRASHED,
    "Paused": StateType.PAUSED,
}
"""Every state name and its type."""

FINAL_TYPE_NAMES = frozenset(kind.value for kind in FINAL_TYPES)
"""The final types as stored (`"FAILED"`): a stored run in one has ended (a Crashed one may
still be resumed)."""


def state_filter(text: str) -> tuple[str, str | None]:
    """(state type, state name or None) that a filter such as `reflow runs ls --state` means:
    a state name (`Failed`, any case) keeps that state, a type (`FAILED`) every state of it."""
    if text.upper() in StateType.__members__:
        return text.upper(), None
    names = {name.lower(): name for name in STATE_TYPES}
    if text.lower() in names:
        name = names[text.lower()]
        return STATE_TYPES[name].name, name
    raise ValueError(
        f"{text!r} is not a state; the states are {', '.join(sorted(STATE_TYPES))} "
        f"and their types {', '.join(StateType.__members__)}"
    )


class StateError(RuntimeError):
    """`state.result()` was asked of a state that has no result (not final, or cancelled)."""


class MissingResult(StateError):
    """`state.result()` was asked of a run that completed in an earlier process whose result
    was not kept in the store (`persist_result=False`, or a value that cannot be stored)."""


class _NotKept:
    """The data of a Completed state read back from a store that did not keep the result."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<result not kept>"

    def __reduce__(self) -> str:
        return "NOT_KEPT"  # one object, in every process


NOT_KEPT: Any = _NotKept()
"""Stands for a result the store did not keep: `result()` of a state holding it raises
`MissingResult`."""


@dataclass(frozen=True, slots=True)
class State(Generic[R]):
    """One state of a run. `state.result()` returns the result or raises the failure."""

    type: StateType
    name: str
    timestamp: float
    """Seconds since the epoch (`time.time()`); `.time` gives a UTC datetime."""
    message: str = ""
    data: R | None = None
    exception: BaseException | None = None
    attempt: int = 0
    """The attempt this state belongs to, counting from 1 (0: before any attempt)."""

    @property
    def time(self) -> datetime:
        """When the run entered this state, as a timezone-aware UTC datetime."""
        from datetime import UTC, datetime

        return datetime.fromtimestamp(self.timestamp, UTC)

    def result(self, raise_on_failure: bool = True) -> R:
        """The run's result; raise its exception when it failed (or return it if told not to)."""
        if self.exception is not None:
            if raise_on_failure:
                raise self.exception
            return self.exception  # type: ignore[return-value]
        if self.type not in FINAL_TYPES:
            raise StateError(f"a {self.name} state has no result yet: the run has not finished")
        if self.type is not StateType.COMPLETED and raise_on_failure:
            raise StateError(f"the run ended {self.name}: {self.message or 'no result'}")
        data = self.data
        if data is NOT_KEPT:
            raise MissingResult(
                self.message
                or "the run completed, but its result was not kept in the store "
                "(persist_result=False, or a value that cannot be stored)"
            )
        return data  # type: ignore[return-value]

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        """Completed, Cached, Skipped and RolledBack are all completed."""
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        """Failed, TimedOut and TriggerFailed are all failed."""
        return self.type is StateType.FAILED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_skipped(self) -> bool:
        return self.name == "Skipped"

    def is_cached(self) -> bool:
        return self.name == "Cached"

    def is_final(self) -> bool:
        """Whether the run has ended in this state."""
        return self.type in FINAL_TYPES

    def __repr__(self) -> str:
        shown = f"{self.name}"
        if self.message:
            shown += f", message={self.message!r}"
        if self.exception is not None:
            shown += f", exception={self.exception!r}"
        elif self.type is StateType.COMPLETED:
            shown += f", result={self.data!r}"
        return f"State({shown})"


def new_state(
    name: str,
    *,
    message: str = "",
    data: Any = None,
    exception: BaseException | None = None,
    attempt: int = 0,
) -> State[Any]:
    """A state by name, timestamped now; raises ValueError for an unknown name."""
    try:
        kind = STATE_TYPES[name]
    except KeyError:
        raise ValueError(f"unknown state {name!r}; known: {', '.join(STATE_TYPES)}") from None
    return State(kind, name, time.time(), message, data, exception, attempt)


def Pending(message: str = "") -> State[Any]:
    return new_state("Pending", message=message)


def Scheduled(message: str = "") -> State[Any]:
    return new_state("Scheduled", message=message)


def AwaitingRetry(message: str = "", attempt: int = 0) -> State[Any]:
    return new_state("AwaitingRetry", message=message, attempt=attempt)


def Running(message: str = "", attempt: int = 1) -> State[Any]:
    return new_state("Running", message=message, attempt=attempt)


def Retrying(message: str = "", attempt: int = 2) -> State[Any]:
    return new_state("Retrying", message=message, attempt=attempt)


def Completed(data: Any = None, message: str = "", attempt: int = 0) -> State[Any]:
    return new_state("Completed", data=data, message=message, attempt=attempt)


def Cached(data: Any = None, message: str = "") -> State[Any]:
    return new_state("Cached", data=data, message=message)


def Skipped(message: str = "", data: Any = None, attempt: int = 0) -> State[Any]:
    return new_state("Skipped", data=data, message=message, attempt=attempt)


def RolledBack(message: str = "") -> State[Any]:
    return new_state("RolledBack", message=message)


def Failed(
    exception: BaseException | None = None, message: str = "", attempt: int = 0
) -> State[Any]:
    return new_state("Failed", exception=exception, message=message, attempt=attempt)


def TimedOut(
    exception: BaseException | None = None, message: str = "", attempt: int = 0
) -> State[Any]:
    return new_state("TimedOut", exception=exception, message=message, attempt=attempt)


def TriggerFailed(message: str = "") -> State[Any]:
    return new_state("TriggerFailed", message=message)


def Cancelled(message: str = "", attempt: int = 0) -> State[Any]:
    return new_state("Cancelled", message=message, attempt=attempt)


def Crashed(exception: BaseException | None = None, message: str = "") -> State[Any]:
    return new_state("Crashed", exception=exception, message=message)


def Paused(message: str = "") -> State[Any]:
    return new_state("Paused", message=message)


def Reverting(message: str = "") -> State[Any]:
    return new_state("Reverting", message=message)


def Reverted(message: str = "", data: Any = None) -> State[Any]:
    return new_state("Reverted", message=message, data=data)
