"""Concurrency limits by tag: at most `n` runs of tasks tagged `tag` at once, process-wide.

    reflow.concurrency_limit("db", 2)        # from now on
    with reflow.concurrency_limit("db", 2):  # or only inside this block
        ...

A direct task call waits for a slot in its own thread. The flow engine never blocks a worker
on a slot: a submitted run that finds its tags full is parked and started when a slot frees.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

_lock = threading.Lock()
_freed = threading.Condition(_lock)


class _Slot:
    __slots__ = ("limit", "parked", "used")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.parked: deque[Callable[[], object]] = deque()


registry: dict[str, _Slot] = {}
"""The limits in force by tag; empty when there are none (one check on every tagged call)."""


class ConcurrencyLimit:
    """The handle `concurrency_limit()` returns: `remove()` it, or use it as a context manager."""

    def __init__(self, tag: str, limit: int, previous: int | None) -> None:
        self.tag = tag
        self.limit = limit
        self._previous = previous

    def remove(self) -> None:
        """Put back the limit the tag had before (none, or the earlier one)."""
        if self._previous is None:
            with _lock:
                slot = registry.pop(self.tag, None)
            if slot is not None:
                _wake_all(slot)
        else:
            concurrency_limit(self.tag, self._previous)

    def __enter__(self) -> ConcurrencyLimit:
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<ConcurrencyLimit {self.tag!r} {self.limit}>"


def concurrency_limit(tag: str, limit: int) -> ConcurrencyLimit:
    """Allow at most `limit` runs of tasks tagged `tag` at the same time, in this process."""
    if not isinstance(tag, str) or not tag:
        raise TypeError(f"concurrency_limit() takes a tag name (a non-empty str), got {tag!r}")
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(
            f"concurrency_limit({tag!r}, {limit!r}): the limit is a whole number >= 1 "
            "(to stop limiting, remove() the handle or leave its with-block)"
        )
    with _lock:
        slot = registry.get(tag)
        previous = None if slot is None else slot.limit
        if slot is None:
            registry[tag] = slot = _Slot(limit)
        else:
            slot.limit = limit
    _wake_all(slot)  # a raised limit may let parked runs start
    return ConcurrencyLimit(tag, limit, previous)


def try_acquire(tags: Iterable[str], on_free: Callable[[], object]) -> tuple[_Slot, ...] | None:
    """Take a slot for each limited tag, or none; when one is full, park `on_free` and say None.

    `on_free` is called (in the releasing thread) once a slot of that tag frees, to try again.
    """
    with _lock:
        slots = tuple(registry[t] for t in sorted(tags) if t in registry)
        full = next((s for s in slots if s.used >= s.limit), None)
        if full is not None:
            full.parked.append(on_free)
            return None
        for s in slots:
            s.used += 1
        return slots


def acquire(tags: Iterable[str]) -> tuple[_Slot, ...]:
    """Take a slot for each limited tag, waiting in this thread until all are free."""
    with _lock:
        while True:
            slots = tuple(registry[t] for t in sorted(tags) if t in registry)
            if all(s.used < s.limit for s in slots):
                for s in slots:
                    s.used += 1
                return slots
            _freed.wait(0.05)  # a short slice keeps a waiting attempt interruptible by timeouts


async def acquire_async(tags: Iterable[str]) -> tuple[_Slot, ...]:
    """Take a slot for each limited tag, awaiting (never blocking the event loop) until free."""
    loop = asyncio.get_running_loop()
    while True:
        freed: asyncio.Future[None] = loop.create_future()

        def wake(freed: asyncio.Future[None] = freed) -> None:
            loop.call_soon_threadsafe(_set_done, freed)

        slots = try_acquire(tags, wake)
        if slots is not None:
            return slots
        await freed


def _set_done(freed: asyncio.Future[None]) -> None:
    if not freed.done():
        freed.set_result(None)


def release(slots: tuple[_Slot, ...]) -> None:
    """Give the slots back; wake the runs parked on them."""
    if not slots:
        return
    with _lock:
        for s in slots:
            s.used -= 1
        _freed.notify_all()
    for s in slots:
        _wake_one(s)


def _wake_one(slot: _Slot) -> None:
    with _lock:
        fn = slot.parked.popleft() if slot.parked and slot.used < slot.limit else None
    if fn is not None:
        fn()


def _wake_all(slot: _Slot) -> None:
    with _lock:
        parked = list(slot.parked)
        slot.parked.clear()
        _freed.notify_all()
    for fn in parked:
        fn()  # each tries again and parks anew if still full


__all__ = [
    "ConcurrencyLimit",
    "acquire",
    "acquire_async",
    "concurrency_limit",
    "release",
    "try_acquire",
]
