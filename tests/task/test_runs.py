"""The states a run goes through, its attempts, and how interrupts leave it Cancelled."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from reflow import task
from reflow.states import State, StateType
from reflow.task import Fail, TaskRun
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Recorder, Script, names


def test_a_successful_run_goes_pending_running_completed(flavor: Flavor) -> None:
    recorder = Recorder()
    t = task(**recorder.hooks())(flavor.function(Script("ok")))

    flavor.call(t)
    run = recorder.run

    assert names(run.states) == ["Pending", "Running", "Completed"]
    assert [s.type for s in run.states] == [
        StateType.PENDING, StateType.RUNNING, StateType.COMPLETED
    ]  # fmt: skip
    assert run.state is run.states[-1]
    assert run.state.result() == "ok"
    assert run.task is t
    assert run.task_name == t.name
    assert [a.number for a in run.attempts] == [1]
    assert "Completed" in repr(run)


def test_a_retried_run_goes_through_awaiting_retry_and_retrying(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    script = Script(ValueError, KeyError, "ok")
    t = task(retries=2, retry_delay_seconds=[1, 2], **recorder.hooks())(flavor.function(script))

    flavor.call(t)
    run = recorder.run

    assert names(run.states) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying",
        "Completed",
    ]  # fmt: skip
    assert [s.attempt for s in run.states] == [0, 1, 1, 2, 2, 3, 3]
    awaiting = [s for s in run.states if s.name == "AwaitingRetry"]
    assert all(s.type is StateType.SCHEDULED for s in awaiting)
    assert "attempt 1 failed (ValueError: failure 1)" in awaiting[0].message
    assert "retrying in 1 s" in awaiting[0].message
    assert "KeyError" in awaiting[1].message
    assert "retrying in 2 s" in awaiting[1].message
    assert all(s.type is StateType.RUNNING for s in run.states if s.name == "Retrying")


def test_a_failed_run_keeps_every_attempt_and_its_exception(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    script = Script(ValueError, KeyError)
    t = task(retries=1, **recorder.hooks())(flavor.function(script))

    state = flavor.state(t)
    run = recorder.run

    assert names(run.states) == ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    assert state is run.state
    assert state.exception is script.raised[-1]
    assert state.attempt == 2
    assert "KeyError" in state.message
    assert [a.number for a in run.attempts] == [1, 2]
    attempt_states = [a.state for a in run.attempts]
    assert [s.name for s in attempt_states if s] == ["Failed", "Failed"]
    assert [s.exception for s in attempt_states if s] == script.raised
    for record in run.attempts:
        assert record.ended is not None
        assert record.started <= record.ended


def test_timestamps_never_decrease(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    t = task(retries=3, **recorder.hooks())(
        flavor.function(Script(ValueError, ValueError, ValueError, "ok"))
    )

    before = time.time()
    flavor.call(t)
    after = time.time()

    stamps = [s.timestamp for s in recorder.run.states]
    assert stamps == sorted(stamps)
    assert before <= stamps[0]
    assert stamps[-1] <= after
    assert recorder.run.states[0].time.tzinfo is not None


def test_fail_signal_message_is_on_the_failed_state(flavor: Flavor) -> None:
    t = task(retries=2)(flavor.function(Script(Fail("bad input"))))

    state = flavor.state(t)

    assert state.name == "Failed"
    assert "bad input" in state.message
    assert isinstance(state.exception, Fail)


def test_run_parameters_bind_arguments_by_name() -> None:
    recorder = Recorder()

    @task(on_completion=recorder.hook("on_completion"))
    def add(a: int, b: int = 10, *rest: int, scale: int = 1) -> int:
        return (a + b + sum(rest)) * scale

    assert add(1, scale=2) == 22
    run = recorder.run
    assert run.args == (1,)
    assert run.kwargs == {"scale": 2}
    assert run.parameters == {"a": 1, "b": 10, "rest": (), "scale": 2}


# --- interrupts ------------------------------------------------------------------------------


def test_keyboard_interrupt_is_not_retried_and_leaves_the_run_cancelled(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    handled: list[tuple[str | None, str]] = []
    script = Script(ValueError, KeyboardInterrupt, "never")

    def handler(t: Any, old: State[Any] | None, new: State[Any]) -> None:
        handled.append((old.name if old else None, new.name))

    t = task(retries=5, state_handlers=handler, **recorder.hooks())(script.step)

    with pytest.raises(KeyboardInterrupt) as info:
        t()

    assert info.value is script.raised[-1]
    assert script.calls == 2
    run = recorder.run
    assert names(run.states) == ["Pending", "Running", "AwaitingRetry", "Retrying", "Cancelled"]
    assert run.state.is_cancelled()
    assert run.state.attempt == 2
    assert "KeyboardInterrupt" in run.state.message
    assert run.attempts[-1].ended is not None
    assert handled[-1] == ("Retrying", "Cancelled")
    assert ("on_failure", "Cancelled", 2) not in recorder.events


def test_keyboard_interrupt_on_the_first_attempt_with_retries(reflow_clock: VirtualClock) -> None:
    runs: list[TaskRun] = []
    script = Script(KeyboardInterrupt)
    t = task(retries=3, retry_on=Exception, on_running=lambda t, run, s: runs.append(run))(
        script.step
    )

    with pytest.raises(KeyboardInterrupt):
        t(return_state=True)
    assert script.calls == 1
    assert names(runs[0].states) == ["Pending", "Running", "Cancelled"]


def test_cancelled_error_raised_in_an_async_task_leaves_it_cancelled(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    script = Script(asyncio.CancelledError)
    t = task(retries=3, **recorder.hooks())(Flavor(True).function(script))

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(t())

    assert script.calls == 1
    assert names(recorder.run.states) == ["Pending", "Running", "Cancelled"]
    assert "CancelledError" in recorder.run.state.message


async def test_cancelling_an_async_task_leaves_the_run_cancelled() -> None:
    recorder = Recorder()
    started = asyncio.Event()
    calls = 0

    @task(retries=3, **recorder.hooks())
    async def wait_forever() -> None:
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.Event().wait()

    job = asyncio.ensure_future(wait_forever())
    await started.wait()
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job

    assert calls == 1
    assert names(recorder.run.states) == ["Pending", "Running", "Cancelled"]
    assert recorder.run.state.is_cancelled()
    assert recorder.run.state.is_final()
    with pytest.raises(Exception, match="Cancelled"):
        recorder.run.state.result()


def test_system_exit_passes_through_and_cancels(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    script = Script(SystemExit(3))
    t = task(retries=2, **recorder.hooks())(script.step)

    with pytest.raises(SystemExit):
        t()
    assert script.calls == 1
    assert recorder.run.state.name == "Cancelled"
