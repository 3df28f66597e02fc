"""Per-attempt timeouts for sync functions, in whatever thread calls them.

One daemon watchdog thread keeps the armed deadlines. When one passes it raises `AttemptTimeout`
inside the attempt's thread with `PyThreadState_SetAsyncExc`. CPython delivers such an exception
between bytecodes, so a Python loop is interrupted promptly while a blocking C call (`time.sleep`,
a socket read, a lock wait) is interrupted only when it returns. Arming and disarming share a lock
with the watchdog, so an interrupt never lands after its attempt is over.

The interrupt is a `BaseException`: a retry loop nested inside the attempt never catches and
retries it, and a function's `except Exception` does not swallow it. Only the call that armed it
turns it into the `AttemptTimeout` users see. An attempt that finishes as its interrupt arrives
counts as timed out: its time was up.
"""

from __future__ import annotations

import ctypes
import heapq
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from reflow.retry.errors import attempt_timeout

T = TypeVar("T")

_set_async_exc = ctypes.pythonapi.PyThreadState_SetAsyncExc
_set_async_exc.argtypes = (ctypes.c_ulong, ctypes.py_object)


class Interrupt(BaseException):
    """What the watchdog raises inside the thread; its owner replaces it by an AttemptTimeout."""


class _Armed:
    __slots__ = ("deadline", "done", "fired", "thread_id")

    def __init__(self, thread_id: int, deadline: float) -> None:
        self.thread_id = thread_id
        self.deadline = deadline
        self.done = False
        self.fired = False


class _Watchdog:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._heap: list[tuple[float, int, _Armed]] = []
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, seconds: float) -> _Armed:
        armed = _Armed(threading.get_ident(), time.monotonic() + seconds)
        with self._cond:
            heapq.heappush(self._heap, (armed.deadline, next(self._order), armed))
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="reflow-timeout-watchdog", daemon=True
                )
                self._thread.start()
            self._cond.notify()
        return armed

    def disarm(self, armed: _Armed) -> bool:
        """Mark the attempt over; return whether its interrupt was sent."""
        with self._cond:
            armed.done = True
            if armed.fired:
                # Clear an interrupt sent but not yet delivered, so it cannot escape later.
                _set_async_exc(armed.thread_id, ctypes.py_object())
            return armed.fired

    def _run(self) -> None:
        with self._cond:
            while True:
                heap = self._heap
                while heap and heap[0][2].done:
                    heapq.heappop(heap)
                if not heap:
                    self._cond.wait()
                    continue
                delay = heap[0][0] - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                armed = heapq.heappop(heap)[2]
                armed.fired = True
                _set_async_exc(armed.thread_id, ctypes.py_object(Interrupt))


_watchdog = _Watchdog()
arm = _watchdog.arm
disarm = _watchdog.disarm


def call_with_timeout(
    fn: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], seconds: float
) -> T:
    """Call `fn(*args, **kwargs)`; raise `AttemptTimeout` if it runs past `seconds`."""
    armed = arm(seconds)
    fired = False
    try:
        try:
            result = fn(*args, **kwargs)
        finally:
            fired = disarm(armed)
    except Interrupt as exc:
        if armed.fired:  # ours (also when it landed in the `finally`); else an outer one's
            raise attempt_timeout(seconds, exc) from None
        raise
    if fired:  # swallowed by a bare `except:`, or delivered as the function returned
        raise attempt_timeout(seconds)
    return result
