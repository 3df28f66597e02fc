"""The `Executor` protocol: where a flow's task runs execute.

An executor is small: `start()` and `shutdown()` bracket a flow run (counted, so one instance
can serve several flows at once), `submit(fn, *args, **kwargs)` runs one call and returns a
`concurrent.futures.Future`. `max_workers` says how many calls it runs at once.

`ships_code` tells the flow engine where attempts run. False (inline, threads): the engine hands
the executor whole task runs, retries included. True (processes, a cluster): the orchestration
(states, retries, waits, timeouts) stays in the flow's process on threads of its own, and the
executor receives each attempt's function and arguments, which it must serialise.

Optional members let an executor do better than one call at a time (the engine looks for
them and works without): `submit_many(calls)` takes many attempts in one go (a `.map()`'s
first attempts: one round trip to a cluster instead of one per element), `check_task(task)`
refuses, with an error that says why, a task the executor cannot run, and `kept(future)` /
`release(kept)` leave results where they were made, for later attempts to take from there.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")


@runtime_checkable
class Executor(Protocol):
    """What a flow needs from the place its tasks run."""

    max_workers: int
    ships_code: bool

    def start(self) -> None:
        """Get ready to take calls (a flow run begins)."""
        ...

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run `fn(*args, **kwargs)`; the future holds its value or its exception."""
        ...

    def shutdown(self) -> None:
        """A flow run that called `start()` is over: free what the last one no longer needs."""
        ...


Call = tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]
"""One attempt handed to `submit_many`: its function, positional and keyword arguments."""


@runtime_checkable
class SubmitsMany(Protocol):
    """An executor that takes many attempts at once (optional; code-shipping executors)."""

    def submit_many(self, calls: Sequence[Call], /) -> list[concurrent.futures.Future[Any]]:
        """Run every call; one future per call, in order. A call that cannot be sent gets a
        future holding the error (a SerializationError), not an exception for the batch."""
        ...


@runtime_checkable
class ChecksTasks(Protocol):
    """An executor that cannot run every task (optional)."""

    def check_task(self, task: Any, /) -> None:
        """Raise (a TypeError saying why and what to do) if the task's runs cannot run here;
        the flow ends each such run Failed with that error, not retried."""
        ...


@runtime_checkable
class KeepsResults(Protocol):
    """An executor that can leave a result where it was made (optional; a cluster).

    After an attempt succeeded, `kept(future)` gives a reference to its result there (or
    None): an object whose `value` is the result, and which the executor accepts in the
    arguments of later calls in place of the value, sending it by reference. The engine
    passes it to the downstream attempts of the run, and calls `release(kept)` once none of
    them needs it any more.
    """

    def kept(self, future: concurrent.futures.Future[Any], /) -> Any | None:
        """The reference to the result of the (successful) attempt `future`, or None."""
        ...

    def release(self, kept: Any, /) -> None:
        """No call will take `kept` any more: free its copy (calls may still pass it; it
        then sends its value)."""
        ...


class SharedPool:
    """A pool that flow runs share: the first `start()` makes it, the last `shutdown()` ends
    it (subclasses say how, in `_make_pool` and `_end_pool`)."""

    def __init__(self) -> None:
        self._pool: Any = None
        self._users = 0
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = self._make_pool()
            self._users += 1

    def shutdown(self) -> None:
        with self._lock:
            self._users -= 1
            pool = self._pool if self._users <= 0 else None
            if pool is not None:
                self._pool, self._users = None, 0
        if pool is not None:
            self._end_pool(pool)

    def _running_pool(self) -> Any:
        pool = self._pool
        if pool is None:
            raise RuntimeError(
                f"{type(self).__name__}.submit() before start(): a flow run starts it"
            )
        return pool

    def _make_pool(self) -> Any:
        raise NotImplementedError

    def _end_pool(self, pool: Any) -> None:
        raise NotImplementedError


class SerializationError(TypeError):
    """A task's function, arguments or result could not be sent to or from its executor.

    Not retried: sending the same thing again fails the same way.
    """


def check_executor(value: object) -> Executor:
    """`value` if it is an executor; a TypeError that says what one is otherwise."""
    if isinstance(value, type):
        raise TypeError(
            f"executor= takes an executor instance, got the class {value.__qualname__}: "
            f"write executor={value.__qualname__}()"
        )
    if not isinstance(value, Executor):
        raise TypeError(
            "executor= takes an object with max_workers, ships_code, start(), submit() and "
            f"shutdown() (see reflow.executors.Executor), got {value!r}"
        )
    return value
