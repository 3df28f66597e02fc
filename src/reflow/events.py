"""Events: every state change of a run, as one object handed to each subscriber.

    from reflow import events

    with events.subscribe(print):
        fetch(1)             # prints each StateChange: Pending, Running, ..., Completed

Subscribers are plain functions called in the thread that changed the state, in the order they
subscribed. They should be quick (append to a queue; the durability layer batches its writes
that way). A subscriber that raises is logged and never changes the run. With no subscriber,
publishing costs one check.
"""

from __future__ import annotations

import inspect
import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from reflow.states import State

logger = logging.getLogger("reflow.events")

RunKind = Literal["task", "flow", "atom"]


@dataclass(frozen=True, slots=True)
class StateChange:
    """A run entered `state` (after `previous`, None for its first state)."""

    run_kind: RunKind
    run_id: str
    name: str
    """The task's (or flow's) name."""
    state: State[Any]
    previous: State[Any] | None
    parent_id: str | None = None
    """The run this one belongs to (a task run's flow run), when there is one."""
    run: Any = None
    """The run's record itself (a TaskRun or FlowRun), for subscribers that keep runs (the
    store's writer); read it in the subscriber, it goes on changing after. For an atom event
    of a kept atoms run's retry controller: a copy of its `History` as of this change."""

    @property
    def timestamp(self) -> float:
        """When the state was entered, in seconds since the epoch."""
        return self.state.timestamp


@dataclass(frozen=True, slots=True)
class Progress:
    """A running atom reported how far it has got (`atom.update_progress(0.5)`)."""

    run_kind: RunKind
    run_id: str
    name: str
    progress: float
    """From 0.0 to 1.0."""
    details: dict[str, Any]
    parent_id: str | None = None


Event = StateChange | Progress
"""What subscribers receive: state changes, and progress reports of atoms."""

Subscriber = Callable[[Event], object]

subscribers: tuple[Subscriber, ...] = ()
"""The current subscribers; replaced whole under a lock, so publishing never locks."""
_lock = threading.Lock()


def _new_lock_after_fork() -> None:
    """A forked child gets a lock of its own (another thread may have held this one)."""
    global _lock
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_new_lock_after_fork)


class Subscription:
    """What `subscribe()` returns: call `unsubscribe()`, or use it as a context manager."""

    def __init__(self, fn: Subscriber) -> None:
        self.fn = fn

    def unsubscribe(self) -> None:
        """Stop sending events to this subscriber (doing it twice is harmless)."""
        global subscribers
        with _lock:
            subscribers = tuple(s for s in subscribers if s is not self.fn)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.unsubscribe()


def subscribe(fn: Subscriber) -> Subscription:
    """Call `fn(event)` for every state change from now on."""
    global subscribers
    if not callable(fn):
        raise TypeError(f"subscribe() takes a function (StateChange) -> None, got {fn!r}")
    if inspect.iscoroutinefunction(fn):
        raise TypeError(
            f"subscribe() takes a plain function: {fn.__qualname__} is async, and events are "
            "delivered in the thread that changes the state; put them on a queue instead"
        )
    with _lock:
        subscribers = (*subscribers, fn)
    return Subscription(fn)


def publish(event: Event) -> None:
    """Hand `event` to every subscriber; errors are logged and go no further."""
    for fn in subscribers:
        try:
            fn(event)
        except Exception:
            what = event.state.name if isinstance(event, StateChange) else "progress"
            logger.exception(
                "reflow: the event subscriber %s raised on %s %s (%s); the run goes on",
                getattr(fn, "__qualname__", fn), event.run_kind, event.name, what,
            )  # fmt: skip


__all__ = ["Event", "Progress", "StateChange", "Subscription", "publish", "subscribe"]
