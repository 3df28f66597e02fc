"""Per-attempt timeouts. These use real time (timeouts bound real work), kept to 0.05-0.2 s."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from reflow import retry
from reflow.retry import AttemptState, AttemptTimeout
from reflow.testing import VirtualClock
from tests.retry._support import spin

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
