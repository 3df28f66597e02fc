"""Futures of submitted task runs, and the argument wrappers `unmapped` and `allow_failure`.

A `Future` is the handle `task.submit()` returns: `result()` waits for the run and returns its
value (or raises its failure), `wait()` returns its final state, `state` is the state now. A
future passed as an argument to another task is a data dependency: the downstream task starts
when it is done, with its result in its place.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from reflow.states import State, StateError
from reflow.task import context
from reflow.task.signals import PauseFlow

if TYPE_CHECKING:
    from reflow.task.run import TaskRun

R = TypeVar("R")
T = TypeVar("T")

logger = logging.getLogger("reflow.flow")


class Settled(threading.Condition):
    """The condition futures of one flow run wait on, counting its waiters: settling a run
    notifies only when someone waits (a map of 10,000 runs mostly has no one waiting)."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.waiting = 0


class Future(Generic[R]):
    """The eventual outcome of one submitted task run."""

    __slots__ = ("_callbacks", "_cond", "_done", "_owner", "run")

    def __init__(self, run: TaskRun, cond: Settled, owner: object = None) -> None:
        self.run = run
        self._cond = cond
        self._owner = owner  # the runner that made it: a paused result stops that flow's code
        self._done = False
        self._callbacks: list[Callable[[Future[R]], object]] | None = []

    @property
    def state(self) -> State[Any]:
        """The run's state now (Pending until it starts)."""
        return self.run.state

    @property
    def task_run(self) -> TaskRun:
        """The run's record: states, attempts, timings, upstream edges."""
        return self.run

    def done(self) -> bool:
        """Whether the run has settled: ended, paused, or blocked behind a paused upstream."""
        return self._done

    def wait(self, timeout: float | None = None) -> State[Any]:
        """Wait for the run to settle (at most `timeout` seconds); return its state."""
        if not self._done:
            _wait_all([self], timeout)
        return self.run.state

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> R:
        """Wait for the run and return its value; raise its failure (unless told not to).

        In the flow that submitted it, asking for the result of a paused run stops the flow's
        code there: the flow run ends Paused until it is resumed.
        """
        state = self.wait(timeout)
        if not self._done:
            raise TimeoutError(
                f"task run {self.run.task_name} did not finish within {timeout} s (it is "
                f"{state.name})"
            )
        if not state.is_final():
            self._unfinished(state)
        return state.result(raise_on_failure)  # type: ignore[no-any-return]

    def _unfinished(self, state: State[Any]) -> None:
        why = state.message or "it waits behind a paused upstream"
        if self._owner is not None and context.runner.get() is self._owner:
            raise PauseFlow(f"task run {self.run.task_name} is {state.name}: {why}")
        raise StateError(
            f"task run {self.run.task_name} is {state.name} ({why}): it has no result until "
            "its flow run is resumed"
        )

    def add_done_callback(self, fn: Callable[[Future[R]], object]) -> None:
        """Call `fn(future)` once the run settles (at once, here, if it has).

        It runs in the thread that settles the run; an exception it raises is logged.
        """
        with self._cond:
            callbacks = self._callbacks
            if callbacks is not None:
                callbacks.append(fn)
                return
        fn(self)

    def set_done(self) -> None:
        """Mark the run settled, wake waiters and run callbacks (the runner calls this)."""
        with self._cond:
            self._done = True
            callbacks, self._callbacks = self._callbacks, None
            if self._cond.waiting:
                self._cond.notify_all()
        for fn in callbacks or ():
            try:
                fn(self)
            except Exception:
                logger.exception(
                    "reflow: the done-callback %s of %r raised; the other callbacks still run",
                    getattr(fn, "__qualname__", fn), self,
                )  # fmt: skip

    def _needed(self) -> None:
        """Someone waits for this run: a run held back until then starts now (see
        `reflow.flow.held`). A submitted run has started already: nothing to do."""

    def __await__(self) -> Generator[Any, None, R]:
        """`await future` in an async flow: wait without blocking the event loop."""
        if not self._done:
            loop = asyncio.get_running_loop()
            waiter: asyncio.Future[None] = loop.create_future()

            def wake(_: Future[R]) -> None:
                loop.call_soon_threadsafe(_resolve, waiter)

            self.add_done_callback(wake)
            yield from waiter.__await__()
        return self.result()

    def __repr__(self) -> str:
        return f"<Future {self.run.task_name} {self.run.state.name}>"


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class FutureList(list[Future[R]]):
    """The futures `task.map()` returns, one per element, in order."""

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[R]:
        """Every run's value in order; raise the first failure (unless told not to)."""
        self.wait(timeout)
        return [f.result(0, raise_on_failure) for f in self]

    def wait(self, timeout: float | None = None) -> list[State[Any]]:
        """Wait for every run to settle; return their states in order."""
        _wait_all(self, timeout)
        return [f.run.state for f in self]

    @property
    def states(self) -> list[State[Any]]:
        return [f.run.state for f in self]


class unmapped(Generic[T]):
    """Pass `value` whole to every mapped call instead of mapping over it."""

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"unmapped({self.value!r})"


class allow_failure(Generic[T]):
    """Let a downstream task run whatever this upstream future's outcome.

    The downstream receives the upstream's value when it completed, else its final `State`
    (with the exception); the failure does not count against the downstream's trigger.
    """

    __slots__ = ("value",)

    def __init__(self, value: T) -> None:
        self.value = value

    def __repr__(self) -> str:
        return f"allow_failure({self.value!r})"


# -- waiting on many ----------------------------------------------------------------------------


def _wait_all(futures: Iterable[Future[Any]], timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    for f in futures:
        if f._done:
            continue
        f._needed()
        cond = f._cond
        with cond:
            while not f._done:
                left = _left(deadline)
                if left is not None and left <= 0:
                    return
                cond.waiting += 1
                try:
                    cond.wait(0.1 if left is None else min(left, 0.1))
                finally:
                    cond.waiting -= 1


def _left(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def wait(
    futures: Iterable[Future[Any]], timeout: float | None = None
) -> tuple[set[Future[Any]], set[Future[Any]]]:
    """Wait for the futures to settle (at most `timeout` s); return `(done, not_done)` sets."""
    items = _check_futures(futures, "wait")
    _wait_all(items, timeout)
    done = {f for f in items if f._done}
    return done, set(items) - done


def as_completed(
    futures: Iterable[Future[Any]], timeout: float | None = None
) -> Iterator[Future[Any]]:
    """Yield the futures as they settle, first finished first; TimeoutError after `timeout` s."""
    items = _check_futures(futures, "as_completed")
    deadline = None if timeout is None else time.monotonic() + timeout
    finished: list[Future[Any]] = []
    signal = threading.Condition()

    def arrived(f: Future[Any]) -> None:
        with signal:
            finished.append(f)
            signal.notify()

    for f in items:
        f.add_done_callback(arrived)
    for _ in range(len(items)):
        with signal:
            while not finished:
                left = _left(deadline)
                if left is not None and left <= 0:
                    raise TimeoutError(
                        f"as_completed(): {len(items) - _ - len(finished)} of {len(items)} "
                        f"future(s) unfinished after {timeout} s"
                    )
                signal.wait(0.1 if left is None else min(left, 0.1))
            f = finished.pop(0)
        yield f


def _check_futures(futures: Iterable[Future[Any]], name: str) -> list[Future[Any]]:
    items = list(dict.fromkeys(futures))
    for f in items:
        if not isinstance(f, Future):
            raise TypeError(f"{name}() takes futures from task.submit() or task.map(), got {f!r}")
    return items


__all__ = ["Future", "FutureList", "Settled", "allow_failure", "as_completed", "unmapped", "wait"]
