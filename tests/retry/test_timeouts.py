"""Per-attempt timeouts. These use real time (timeouts bound real work), kept to 0.05-0.2 s."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from reflow import retry
from reflow.retry import AttemptState, AttemptTimeout, timeouts
from reflow.testing import VirtualClock
from tests.retry._support import Flavor, Recorder, spin

TIMEOUT = 0.05


def test_attempt_timeout_is_a_timeout_error() -> None:
    assert issubclass(AttemptTimeout, TimeoutError)


# --- async ------------------------------------------------------------------------------------


async def test_async_attempt_is_cancelled_and_retried(reflow_clock: VirtualClock) -> None:
    cancelled: list[int] = []
    calls = 0

    @retry(attempts=3, wait=1, timeout=TIMEOUT)
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            try:
                await asyncio.Event().wait()  # never set: only the timeout ends it
            except asyncio.CancelledError:
                cancelled.append(calls)
                raise
        return "fast"

    assert await fetch() == "fast"
    assert calls == 2
    assert cancelled == [1]
    assert reflow_clock.waits == [1]


async def test_async_timed_out_attempt_fails_with_attempt_timeout(
    reflow_clock: VirtualClock,
) -> None:
    failures: list[BaseException | None] = []

    @retry(attempts=2, wait=0, timeout=TIMEOUT, on_failure=lambda s: failures.append(s.exception))
    async def fetch() -> None:
        await asyncio.Event().wait()

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s") as info:
        await fetch()
    assert [type(f) for f in failures] == [AttemptTimeout, AttemptTimeout]
    assert info.value.__notes__[0].startswith("reflow: gave up after 2 attempts")


async def test_async_timeout_leaves_the_callers_task_uncancelled(
    reflow_clock: VirtualClock,
) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    async def fetch() -> None:
        await asyncio.Event().wait()

    with pytest.raises(AttemptTimeout):
        await fetch()
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0
    await asyncio.sleep(0)  # the task is still usable: no pending cancellation


async def test_quick_async_attempts_never_time_out(reflow_clock: VirtualClock) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    async def quick(n: int) -> int:
        await asyncio.sleep(0)
        return n

    assert [await quick(n) for n in range(200)] == list(range(200))


# --- sync -------------------------------------------------------------------------------------


def _first_attempt_spins() -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def fetch() -> str:
        calls.append(threading.get_ident())
        if len(calls) == 1:
            spin()
        return "fast"

    return calls, fetch


def test_sync_python_loop_is_interrupted_and_retried(reflow_clock: VirtualClock) -> None:
    failures: list[BaseException | None] = []
    calls, fn = _first_attempt_spins()
    fetch = retry(
        attempts=3, wait=1, timeout=TIMEOUT, on_failure=lambda s: failures.append(s.exception)
    )(fn)

    assert fetch() == "fast"
    assert len(calls) == 2
    assert [type(f) for f in failures] == [AttemptTimeout]
    assert isinstance(failures[0], TimeoutError)
    assert reflow_clock.waits == [1]


def test_sync_timeout_works_in_a_worker_thread(reflow_clock: VirtualClock) -> None:
    calls, fn = _first_attempt_spins()
    fetch = retry(attempts=3, wait=0, timeout=TIMEOUT)(fn)

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(fetch).result(timeout=10) == "fast"
    assert len(calls) == 2
    assert calls[0] != threading.main_thread().ident
    assert calls[0] == calls[1]  # both attempts ran in the caller's thread


def test_sync_timed_out_attempts_raise_attempt_timeout_when_exhausted(
    reflow_clock: VirtualClock,
) -> None:
    @retry(attempts=2, wait=0, timeout=TIMEOUT)
    def fetch() -> None:
        spin()

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s") as info:
        fetch()
    assert info.value.__notes__[0].startswith("reflow: gave up after 2 attempts")


def test_swallowed_interrupt_still_counts_as_a_timeout(reflow_clock: VirtualClock) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    def stubborn() -> str:
        try:
            spin()
        except Exception:
            return "swallowed"
        return "unreachable"

    with pytest.raises(AttemptTimeout):
        stubborn()


def test_nothing_is_raised_after_a_timed_out_call_returns(reflow_clock: VirtualClock) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    def stubborn() -> None:
        try:
            spin()
        except Exception:
            return

    with pytest.raises(AttemptTimeout):
        stubborn()
    total = 0
    for n in range(200_000):  # Python bytecode in which a stray interrupt would land
        total += n
    assert total == sum(range(200_000))


def test_quick_sync_attempts_never_leak_a_timeout(reflow_clock: VirtualClock) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    def quick(n: int) -> int:
        return n

    assert [quick(n) for n in range(500)] == list(range(500))


def test_quick_sync_attempts_in_threads_never_leak_a_timeout(reflow_clock: VirtualClock) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    def quick(n: int) -> int:
        return n

    def many(offset: int) -> list[int]:
        return [quick(offset + n) for n in range(200)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(many, [0, 200, 400, 600]))
    assert [n for chunk in results for n in chunk] == list(range(800))


def test_errors_inside_a_timed_attempt_are_retried_as_usual(reflow_clock: VirtualClock) -> None:
    calls = 0

    @retry(attempts=3, wait=0, timeout=1)
    def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise ConnectionError
        return "ok"

    assert fetch() == "ok"
    assert calls == 2


def test_on_shorthand_also_retries_timed_out_attempts(reflow_clock: VirtualClock) -> None:
    seen: list[type[BaseException]] = []

    def record(state: AttemptState) -> None:
        seen.append(type(state.exception))

    _, fn = _first_attempt_spins()
    fetch = retry(on=ConnectionError, wait=0, timeout=TIMEOUT, on_failure=record)(fn)

    assert fetch() == "fast"
    assert seen == [AttemptTimeout]


def test_timeout_message_gives_the_seconds_rounded(flavor: Flavor) -> None:
    if flavor.is_async:

        async def hang() -> None:
            await asyncio.Event().wait()

        fetch = retry(attempts=1, timeout=TIMEOUT)(hang)
    else:
        fetch = retry(attempts=1, timeout=TIMEOUT)(spin)

    with pytest.raises(AttemptTimeout) as info:
        flavor.call(fetch)
    assert str(info.value) == "attempt timed out after 0.05 s"


def test_timeout_cut_by_the_deadline_is_reported_rounded(reflow_clock: VirtualClock) -> None:
    calls = 0

    @retry(attempts=2, wait=0, deadline=10, timeout=5)
    def fetch() -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            reflow_clock.advance(10 - 0.0466666666)  # leaves 0.0466666666 s of the deadline
            raise ConnectionError("reset")
        spin()

    with pytest.raises(AttemptTimeout) as info:
        fetch()
    assert str(info.value) == "attempt timed out after 0.0467 s"


# --- the interrupt belongs to the attempt that armed it ----------------------------------------


def test_interrupt_is_a_base_exception_not_an_exception() -> None:
    assert issubclass(timeouts.Interrupt, BaseException)
    assert not issubclass(timeouts.Interrupt, Exception)
    assert not issubclass(timeouts.Interrupt, AttemptTimeout)


def test_except_exception_in_the_attempt_cannot_swallow_the_interrupt(
    reflow_clock: VirtualClock,
) -> None:
    swallowed: list[Exception] = []
    ran_to_the_end: list[bool] = []

    @retry(attempts=1, timeout=TIMEOUT)
    def busy() -> str:
        safety = time.monotonic() + 10  # only so a regression fails instead of hanging
        while time.monotonic() < safety:
            try:
                sum(range(100))
            except Exception as exc:  # must not see the interrupt
                swallowed.append(exc)
        ran_to_the_end.append(True)
        return "ran to the end"

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s"):
        busy()
    assert swallowed == []
    assert ran_to_the_end == []  # interrupted, not run until the safety bound


def test_bare_except_base_exception_still_counts_as_timed_out(
    reflow_clock: VirtualClock,
) -> None:
    failures: list[BaseException | None] = []
    swallowed: list[BaseException] = []

    @retry(attempts=1, timeout=TIMEOUT, on_failure=lambda s: failures.append(s.exception))
    def stubborn() -> str:
        try:
            spin()
        except BaseException as exc:  # swallows even the interrupt
            swallowed.append(exc)
        return "I am fine"

    with pytest.raises(AttemptTimeout, match=r"timed out after 0\.05 s"):
        stubborn()
    assert [type(exc) for exc in swallowed] == [timeouts.Interrupt]
    assert [type(f) for f in failures] == [AttemptTimeout]


def test_outer_timeout_passes_through_an_inner_retry_loop(reflow_clock: VirtualClock) -> None:
    inner_calls = 0
    inner_events = Recorder()

    @retry(timeout=5, attempts=3, wait=0, on_failure=inner_events, on_giveup=inner_events)
    def inner() -> None:
        nonlocal inner_calls
        inner_calls += 1
        spin()

    @retry(timeout=TIMEOUT, attempts=1)
    def outer() -> None:
        inner()

    with pytest.raises(AttemptTimeout) as info:
        outer()
    assert str(info.value) == "attempt timed out after 0.05 s"  # the outer's, not the inner's 5 s
    assert inner_calls == 1  # the inner loop did not retry the outer's interrupt
    assert inner_events.events == []  # nor count it as one of its failures


def test_outer_retries_its_timed_out_attempt_through_an_inner_retriable(
    reflow_clock: VirtualClock,
) -> None:
    inner_calls = 0

    @retry(timeout=5, attempts=3, wait=0)
    def inner() -> str:
        nonlocal inner_calls
        inner_calls += 1
        if inner_calls == 1:
            spin()
        return "ok"

    outer_failures: list[BaseException | None] = []

    @retry(
        timeout=TIMEOUT, attempts=2, wait=0, on_failure=lambda s: outer_failures.append(s.exception)
    )
    def outer() -> str:
        return inner()

    assert outer() == "ok"
    assert inner_calls == 2  # once per outer attempt
    assert [type(f) for f in outer_failures] == [AttemptTimeout]


def test_inner_timeout_is_handled_by_the_inner_retry_loop(reflow_clock: VirtualClock) -> None:
    inner_failures: list[BaseException | None] = []
    outer_failures: list[BaseException | None] = []
    inner_calls = 0

    @retry(
        timeout=TIMEOUT, attempts=2, wait=0, on_failure=lambda s: inner_failures.append(s.exception)
    )
    def inner() -> str:
        nonlocal inner_calls
        inner_calls += 1
        if inner_calls == 1:
            spin()
        return "ok"

    @retry(timeout=5, attempts=2, wait=0, on_failure=lambda s: outer_failures.append(s.exception))
    def outer() -> str:
        return inner()

    assert outer() == "ok"
    assert [type(f) for f in inner_failures] == [AttemptTimeout]
    assert outer_failures == []


def test_an_interrupt_not_armed_by_the_attempt_passes_through(
    reflow_clock: VirtualClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An outer timeout's interrupt landing as the inner attempt disarms is not the inner's."""
    real_disarm = timeouts.disarm

    def disarm_as_an_outer_interrupt_lands(armed: Any) -> bool:
        real_disarm(armed)
        raise timeouts.Interrupt

    monkeypatch.setattr(timeouts, "disarm", disarm_as_an_outer_interrupt_lands)
    calls = 0

    @retry(timeout=5, attempts=3, wait=0)
    def fetch() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    with pytest.raises(timeouts.Interrupt):
        fetch()
    assert calls == 1


# --- async attempts that swallow their cancellation ---------------------------------------------


async def test_async_attempt_that_swallows_its_cancellation_counts_as_timed_out(
    reflow_clock: VirtualClock,
) -> None:
    failures: list[BaseException | None] = []
    calls = 0

    @retry(attempts=2, wait=0, timeout=TIMEOUT, on_failure=lambda s: failures.append(s.exception))
    async def fetch() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                return "too late"  # swallows the cancellation
        return "fast"

    assert await fetch() == "fast"
    assert calls == 2
    assert [type(f) for f in failures] == [AttemptTimeout]
    task = asyncio.current_task()
    assert task is not None
    assert task.cancelling() == 0


async def test_async_swallowed_cancellation_raises_attempt_timeout_when_exhausted(
    reflow_clock: VirtualClock,
) -> None:
    @retry(attempts=1, timeout=TIMEOUT)
    async def fetch() -> str:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            return "x"
        return "unreachable"

    with pytest.raises(AttemptTimeout) as info:
        await fetch()
    assert str(info.value) == "attempt timed out after 0.05 s"
