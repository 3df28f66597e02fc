"""`timeout_seconds` per attempt. Real time (timeouts bound real work), 0.05 s per attempt."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest

from reflow import task
from reflow.retry import AttemptTimeout
from reflow.states import State
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Recorder, spin

TIMEOUT = 0.05


def slow_then(flavor: Flavor, outcomes: list[Any]) -> Any:
    """A function that runs past the timeout where `outcomes` says "slow", else returns."""
    calls = 0

    def sync_fn() -> Any:
        nonlocal calls
        outcome = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if outcome == "slow":
            spin()
        return outcome

    async def async_fn() -> Any:
        nonlocal calls
        outcome = outcomes[min(calls, len(outcomes) - 1)]
        calls += 1
        if outcome == "slow":
            await asyncio.sleep(5)
        return outcome

    return async_fn if flavor.is_async else sync_fn


def test_a_timed_out_attempt_is_recorded_and_retried(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    t = task(retries=2, retry_delay_seconds=1, timeout_seconds=TIMEOUT, **recorder.hooks())(
        slow_then(flavor, ["slow", "fast"])
    )

    assert flavor.call(t) == "fast"

    run = recorder.run
    assert [a.number for a in run.attempts] == [1, 2]
    first, second = run.attempts
    assert first.state is not None
    assert first.state.name == "TimedOut"
    assert first.state.is_failed()
    assert isinstance(first.state.exception, AttemptTimeout)
    assert isinstance(first.state.exception, TimeoutError)
    assert "timed out" in first.state.message
    assert second.state is not None
    assert second.state.name == "Completed"
    assert reflow_clock.waits == [1]
    assert [name for _, name, _ in recorder.events] == [
        "Running", "AwaitingRetry", "Retrying", "Completed"
    ]  # fmt: skip


def test_final_state_is_timed_out_when_every_attempt_times_out(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    t = task(retries=1, timeout_seconds=TIMEOUT, on_failure=recorder.hook("on_failure"))(
        slow_then(flavor, ["slow"])
    )

    state: State[Any] = flavor.state(t)

    assert state.name == "TimedOut"
    assert state.is_failed()
    assert isinstance(state.exception, AttemptTimeout)
    assert [a.state.name for a in recorder.run.attempts if a.state] == ["TimedOut", "TimedOut"]
    assert recorder.events == [("on_failure", "TimedOut", 2)]
    with pytest.raises(AttemptTimeout):
        flavor.call(t)


def test_a_timeout_is_retried_even_when_retry_on_names_other_errors(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    t = task(retries=1, retry_on=KeyError, timeout_seconds=TIMEOUT)(
        slow_then(flavor, ["slow", "fast"])
    )

    assert flavor.call(t) == "fast"


def test_timeout_as_timedelta(reflow_clock: VirtualClock) -> None:
    t = task(timeout_seconds=timedelta(milliseconds=50))(slow_then(Flavor(False), ["slow"]))

    assert t.timeout_seconds == pytest.approx(0.05)
    with pytest.raises(AttemptTimeout):
        t()


def test_a_fast_attempt_is_not_affected_by_the_timeout(flavor: Flavor) -> None:
    t = task(timeout_seconds=10)(slow_then(flavor, ["fast"]))

    assert flavor.call(t) == "fast"


def test_retry_condition_fn_sees_the_timed_out_state(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    seen: list[str] = []

    def decide(t: Any, run: Any, state: State[Any]) -> bool:
        seen.append(state.name)
        return False

    t = task(retries=3, timeout_seconds=TIMEOUT, retry_condition_fn=decide)(
        slow_then(flavor, ["slow"])
    )

    assert flavor.state(t).name == "TimedOut"
    assert seen == ["TimedOut"]


def test_sync_task_times_out_in_a_worker_thread(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    t = task(retries=1, timeout_seconds=TIMEOUT, on_running=recorder.hook("on_running"))(
        slow_then(Flavor(False), ["slow", "fast"])
    )

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert pool.submit(t).result(timeout=30) == "fast"
    assert [a.state.name for a in recorder.run.attempts if a.state] == ["TimedOut", "Completed"]


def test_sync_tasks_time_out_in_several_threads_at_once() -> None:
    t = task(timeout_seconds=TIMEOUT)(slow_then(Flavor(False), ["slow"]))
    states: list[State[Any]] = []
    lock = threading.Lock()

    def call() -> None:
        state = t(return_state=True)
        with lock:
            states.append(state)

    threads = [threading.Thread(target=call) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert [s.name for s in states] == ["TimedOut"] * 3
    assert all(isinstance(s.exception, AttemptTimeout) for s in states)


def test_timed_out_attempt_of_a_function_catching_exception_still_times_out(
    reflow_clock: VirtualClock,
) -> None:
    @task(timeout_seconds=TIMEOUT)
    def stubborn() -> str:
        try:
            spin()
        except Exception:  # the timeout interrupt is no Exception: not swallowed here
            return "swallowed"
        return "finished"

    with pytest.raises(AttemptTimeout):
        stubborn()
