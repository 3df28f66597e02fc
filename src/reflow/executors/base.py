"""The `Executor` protocol: where a flow's task runs execute.

An executor is small: `start()` and `shutdown()` bracket a flow run (counted, so one instance
can serve several flows at once), `submit(fn, *args, **kwargs)` runs one call and returns a
`concurrent.futures.Future`. `max_workers` says how many calls it runs at once.

`ships_code` tells the flow engine where attempts run. False (inline, threads): the engine hands
the executor whole task runs, retries included. True (processes, a cluster): the orchestration
(states, retries, waits, timeouts) stays in the flow's process on threads of its own, and the
executor receives each attempt's function and arguments, which it must serialise.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
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
