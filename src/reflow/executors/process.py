"""`ProcessExecutor`: task attempts in worker processes, shipped with cloudpickle.

The flow's process keeps the orchestration (states, retries, waits, timeouts); each attempt's
function and arguments go to a worker process pickled with cloudpickle (so functions defined
in `__main__`, closures and lambdas travel too) and its value or exception comes back the same
way. Workers start with the "spawn" method by default: a script that runs flows on a process
pool must guard its entry point with `if __name__ == "__main__":`.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable
from typing import Any, TypeVar

from reflow.executors.base import SharedPool
from reflow.executors.shipping import RemoteError, call_payload, name_of, outcome, run_payload
from reflow.task.signals import mark_crash

T = TypeVar("T")


class ProcessExecutor(SharedPool):
    """Runs task attempts on up to `max_workers` processes (default: one per CPU).

    The pool is pebble's: an attempt given up on (its timeout passed, its flow ended) is
    stopped by terminating the worker running it, and a worker that dies (killed, out of
    memory) is replaced, its attempt ending Crashed with pebble's `ProcessExpired` (retried,
    if the task has retries left, as for a lost worker on any executor).
    """

    ships_code = True

    def __init__(self, max_workers: int | None = None, mp_context: str = "spawn") -> None:
        if max_workers is None:
            max_workers = os.cpu_count() or 1
        if isinstance(max_workers, bool) or not isinstance(max_workers, int) or max_workers < 1:
            raise ValueError(
                f"ProcessExecutor(max_workers=...) takes an int >= 1, got {max_workers!r}"
            )
        import multiprocessing  # here: importing it at all registers __mp_main__

        methods = multiprocessing.get_all_start_methods()
        if mp_context not in methods:
            raise ValueError(
                f"ProcessExecutor(mp_context={mp_context!r}): this platform offers "
                f"{', '.join(methods)}"
            )
        self.max_workers = max_workers
        self.mp_context = mp_context
        super().__init__()

    def _make_pool(self) -> Any:
        import multiprocessing

        import cloudpickle  # noqa: F401 - fail at the start of the flow, not at its first task
        import pebble

        context = multiprocessing.get_context(self.mp_context)
        return pebble.ProcessPool(self.max_workers, context=context)

    def _end_pool(self, pool: Any) -> None:
        # Attempts still running were given up on by their flow (a timeout): Python cannot
        # stop them inside a worker, so stop() terminates the workers; nothing waits.
        pool.stop()
        pool.join()

    def submit(
        self, fn: Callable[..., T], /, *args: Any, **kwargs: Any
    ) -> concurrent.futures.Future[T]:
        """Run the call in a worker; cancelling the returned future stops it even mid-run."""
        payload = call_payload(fn, args, kwargs)
        with self._lock:
            inner: concurrent.futures.Future[bytes] = self._running_pool().schedule(
                run_payload, (payload,)
            )
        outer: concurrent.futures.Future[T] = concurrent.futures.Future()
        waiting = [outer]  # emptied once settled: the two futures must not hold each other

        def settle(done: concurrent.futures.Future[bytes]) -> None:
            if waiting:
                _settle(waiting.pop(), done, fn)

        inner.add_done_callback(settle)
        outer.add_done_callback(lambda done: inner.cancel() if done.cancelled() else None)
        return outer

    def __repr__(self) -> str:
        return f"ProcessExecutor(max_workers={self.max_workers}, mp_context={self.mp_context!r})"


def _settle(
    outer: concurrent.futures.Future[Any], done: concurrent.futures.Future[bytes], fn: object
) -> None:
    """Hand the worker's outcome to the caller's future (unless the caller gave up on it)."""
    from pebble import ProcessExpired

    try:
        ok, value = outcome(done.result())
    except ProcessExpired as exc:
        exc.add_note(
            f"reflow: the worker process running {name_of(fn)} died; the attempt is Crashed "
            "and is retried if the task has retries left"
        )
        ok, value = False, mark_crash(exc)
    except BaseException as exc:  # cancelled, or the pool was stopped
        ok, value = False, exc
    try:
        if ok:
            outer.set_result(value)
        else:
            outer.set_exception(value)
    except concurrent.futures.InvalidStateError:
        pass  # the caller cancelled it meanwhile: nobody waits for this outcome


__all__ = ["ProcessExecutor", "RemoteError"]
