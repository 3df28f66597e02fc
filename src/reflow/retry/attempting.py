"""`attempting()` / `attempting_async()`: the retry policy of `@retry`, for a block of code.

    for attempt in attempting(attempts=3, on=ConnectionError):
        with attempt:
            reply = send(request)

Each `with attempt:` block is one attempt. A failure the policy retries is suppressed and the
loop goes on after the wait; when retrying ends, the original exception leaves the block. The
decisions are those of `@retry` (the same plan), so hooks, waits and notes behave the same.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

from reflow.retry import _clock
from reflow.retry.errors import attempt_timeout
from reflow.retry.hooks import call_hooks_async, call_hooks_sync
from reflow.retry.plan import CallHooks, Outcome, Plan, Run, Sleep, plan
from reflow.retry.policy import PolicyOptions, make_policy

if TYPE_CHECKING:
    import asyncio


class _Loop:
    """A plan whose `Run` steps are performed by the user's `with` blocks."""

    __slots__ = ("final", "step", "steps")

    def __init__(self, steps: Plan) -> None:
        self.steps = steps
        self.step: Run | Sleep | None = None
        self.final: Outcome | None = None

    def pump_sync(self, value: object) -> None:
        """Send `value`, perform hook steps, stop at the next Run or Sleep step or the end."""
        try:
            step = self.steps.send(value)
            while type(step) is CallHooks:
                step = self.steps.send(call_hooks_sync(step.hooks, step.state))
        except StopIteration as done:
            self.final = done.value
        else:
            self.step = step  # type: ignore[assignment]

    async def pump_async(self, value: object) -> None:
        try:
            step = self.steps.send(value)
            while type(step) is CallHooks:
                step = self.steps.send(await call_hooks_async(step.hooks, step.state))
        except StopIteration as done:
            self.final = done.value
        else:
            self.step = step  # type: ignore[assignment]


class Attempt:
    """One attempt of an `attempting()` loop: `with attempt:` (or `async with`) wraps its code."""

    def __init__(self, loop: _Loop, step: Run) -> None:
        self._loop = loop
        self._timeout = step.timeout
        self._armed: Any = None
        self._scope: asyncio.Timeout | None = None
        self.number = step.number
        """The attempt's number, counting from 1."""
        self.finished = False

    def _settle(self, exc: BaseException | None) -> bool:
        """Suppress the block's exception when retrying goes on; else let the final one out."""
        self.finished = True
        final = self._loop.final
        if final is None:
            return True
        if final[0] is None or final[0] is exc:
            return False
        raise final[0] from None  # a timeout standing in for the interrupt that ended the block

    def _passes_through(self, exc: BaseException | None) -> bool:
        if exc is not None and not isinstance(exc, Exception):
            self._loop.final = (exc, None)  # KeyboardInterrupt & co.: never retried
            self.finished = True
            return True
        return False

    def __enter__(self) -> Attempt:
        if self._timeout is not None:
            from reflow.retry import timeouts

            self._armed = timeouts.arm(self._timeout)
        return self

    def __exit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        failure = exc
        if self._armed is not None:
            from reflow.retry import timeouts

            try:
                timeouts.disarm(self._armed)
            except timeouts.Interrupt as late:  # delivered just as the block ended
                if not self._armed.fired:
                    raise  # an outer timeout's: not this attempt's to turn into a timeout
                exc = exc if exc is not None else late
            if self._armed.fired and (exc is None or isinstance(exc, timeouts.Interrupt)):
                failure = attempt_timeout(self._timeout or 0.0, exc)
        if self._passes_through(failure):  # an outer timeout's Interrupt passes too
            return False
        self._loop.pump_sync((failure, None))
        return self._settle(exc)

    async def __aenter__(self) -> Attempt:
        if self._timeout is not None:
            import asyncio

            self._scope = asyncio.timeout(self._timeout)
            await self._scope.__aenter__()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        failure = exc
        if self._scope is not None:
            with contextlib.suppress(TimeoutError):  # replaced below by a described one
                await self._scope.__aexit__(et, exc, tb)
            if self._scope.expired():
                failure = attempt_timeout(self._timeout or 0.0, exc)
        if self._passes_through(failure):
            return False
        await self._loop.pump_async((failure, None))
        return self._settle(exc)


class Attempting:
    """What `attempting()` returns: iterate it (`for` or `async for`) to get `Attempt`s."""

    def __init__(self, **options: Unpack[PolicyOptions]) -> None:
        self._policy = make_policy(**options)

    def _loop(self) -> _Loop:
        return _Loop(plan(self._policy, "attempting block", (), {}, _clock.monotonic()))

    def __iter__(self) -> Iterator[Attempt]:
        loop = self._loop()
        loop.pump_sync(None)
        while loop.final is None:
            step = loop.step
            if type(step) is Sleep:
                _clock.sleep(step.seconds)
                loop.pump_sync(None)
                continue
            attempt = Attempt(loop, step)  # type: ignore[arg-type]
            yield attempt
            if not attempt.finished:  # the body never entered `with attempt:`: a success
                loop.pump_sync((None, None))

    async def __aiter__(self) -> AsyncIterator[Attempt]:
        loop = self._loop()
        await loop.pump_async(None)
        while loop.final is None:
            step = loop.step
            if type(step) is Sleep:
                await _clock.async_sleep(step.seconds)
                await loop.pump_async(None)
                continue
            attempt = Attempt(loop, step)  # type: ignore[arg-type]
            yield attempt
            if not attempt.finished:
                await loop.pump_async((None, None))


def attempting(**options: Unpack[PolicyOptions]) -> Attempting:
    """Retry a block: `for attempt in attempting(...): with attempt: ...`.

    Takes the options of `retry()`; they are checked here, before the first attempt.
    """
    return Attempting(**options)


def attempting_async(**options: Unpack[PolicyOptions]) -> Attempting:
    """Retry a block in async code: `async for attempt in attempting_async(...):`.

    Each attempt is `async with attempt: ...`. Waits use the event loop's sleep and async
    hooks are awaited.
    """
    return Attempting(**options)
