"""How a flow run's final state is decided, flow retries reusing completed task runs, the flow
timeout, and the flow hooks."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from reflow import Fail, Flow, FlowRun, flow, get_run_context, task
from reflow.executors import ThreadExecutor
from reflow.retry import AttemptTimeout
from reflow.states import State, StateError
from reflow.testing import VirtualClock
from reflow.triggers import all_finished
from tests._support import Script


class Calls:
    """Counts calls by name, from any thread."""

    def __init__(self) -> None:
        self.counts = Counter[str]()
        self._lock = threading.Lock()

    def hit(self, name: str) -> int:
        with self._lock:
            self.counts[name] += 1
            return self.counts[name]

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@task
def ok(value: Any = "ok") -> Any:
    return value


@task
def broken(message: str = "broken") -> Any:
    raise ValueError(message)


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    """An event a task waits on; always set at the end so no worker thread is left waiting."""
    event = threading.Event()
    yield event
    event.set()


def names(states: list[State[Any]]) -> list[str]:
    return [s.name for s in states]


# --- reference tasks -------------------------------------------------------------------------


def test_a_failed_reference_task_fails_the_flow_even_when_cleanup_succeeded() -> None:
    @task(trigger=all_finished)
    def cleanup(x: Any) -> str:
        return "cleaned"

    @flow(reference_tasks=[broken])
    def pipeline() -> None:
        cleanup.submit(broken.submit("load failed"))

    flow_run = pipeline.run()

    assert [r.state.name for r in flow_run.task_runs] == ["Failed", "Completed"]
    assert flow_run.state.name == "Failed"
    assert isinstance(flow_run.state.exception, ValueError)
    assert str(flow_run.state.exception) == "load failed"
    assert "broken-0 (Failed)" in flow_run.state.message


def test_without_reference_tasks_a_successful_cleanup_terminal_task_completes_the_flow() -> None:
    @task(trigger=all_finished)
    def cleanup(x: Any) -> str:
        return "cleaned"

    @flow
    def pipeline() -> None:
        cleanup.submit(broken.submit())

    flow_run = pipeline.run()

    assert flow_run.task_runs[0].state.name == "Failed"
    assert flow_run.state.name == "Completed"  # only terminal runs count by default


def test_reference_tasks_may_be_named() -> None:
    @flow(reference_tasks=["broken"])
    def pipeline() -> str:
        broken.submit()
        return "body ok"

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, ValueError)


def test_a_completed_reference_task_completes_the_flow_despite_other_failures() -> None:
    @flow(reference_tasks=[ok])
    def pipeline() -> str:
        ok.submit()
        broken.submit()
        return "done"

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert flow_run.result() == "done"


def test_default_reference_runs_are_the_terminal_runs() -> None:
    @task
    def consume(x: Any) -> str:
        return "consumed"

    @flow
    def chain_ends_well() -> None:
        consume.submit(ok.submit())

    @flow
    def a_loose_end_fails() -> None:
        consume.submit(ok.submit())
        broken.submit("dangling")

    assert chain_ends_well.run().state.name == "Completed"
    failed = a_loose_end_fails.run()
    assert failed.state.is_failed()
    assert str(failed.state.exception) == "dangling"


def test_a_failure_the_body_caught_still_fails_the_flow_as_a_terminal_run() -> None:
    @flow
    def pipeline() -> str:
        with contextlib.suppress(ValueError):
            broken("handled")
        return "recovered"

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert str(flow_run.state.exception) == "handled"


def test_a_reference_task_that_never_ran_fails_the_flow() -> None:
    @task
    def after(x: Any) -> None: ...

    @flow(reference_tasks=[after])
    def pipeline() -> None:
        after.submit(broken.submit())

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert flow_run.task_runs[-1].state.name == "TriggerFailed"
    assert "after-0 (TriggerFailed)" in flow_run.state.message


# --- what the body returned or raised --------------------------------------------------------


def test_returning_a_failed_future_fails_the_flow() -> None:
    @flow
    def pipeline() -> Any:
        return broken.submit("returned")

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert str(flow_run.state.exception) == "returned"
    assert "returned a Failed state" in flow_run.state.message


def test_returning_a_failed_state_fails_the_flow() -> None:
    @flow
    def pipeline() -> Any:
        state = broken("as state", return_state=True)
        assert isinstance(state, State)
        return state

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert str(flow_run.state.exception) == "as state"


def test_a_failed_future_inside_a_returned_container_fails_the_flow() -> None:
    @flow(reference_tasks=[ok])
    def pipeline() -> Any:
        return {"good": ok.submit(1), "bad": [broken.submit("inside")]}

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert str(flow_run.state.exception) == "inside"


def test_returning_completed_futures_and_states_gives_their_results() -> None:
    @flow
    def pipeline() -> Any:
        return ok.submit(1), ok(2, return_state=True), [ok.submit(3)]

    assert pipeline() == (1, 2, [3])


def test_an_exception_in_the_body_fails_the_flow_with_that_exception() -> None:
    raised: list[BaseException] = []

    @flow
    def pipeline() -> None:
        ok()
        error = LookupError("no such row")
        raised.append(error)
        raise error

    flow_run = pipeline.run()

    assert flow_run.state.name == "Failed"
    assert flow_run.state.exception is raised[0]
    assert "LookupError: no such row" in flow_run.state.message
    with pytest.raises(LookupError, match="no such row"):
        pipeline()


def test_unfinished_submitted_futures_are_awaited_before_the_flow_ends(
    gate: threading.Event,
) -> None:
    finished: list[str] = []

    @task
    def slow() -> str:
        assert gate.wait(10), "never released"
        finished.append("slow")
        return "slow done"

    @task
    def release() -> None:
        gate.set()

    @flow(executor=ThreadExecutor(max_workers=4))
    def pipeline() -> str:
        slow.submit()
        release.submit()
        return "body returned"

    flow_run = pipeline.run()

    assert flow_run.result() == "body returned"
    assert finished == ["slow"]
    assert [r.state.name for r in flow_run.task_runs] == ["Completed", "Completed"]


def test_unfinished_futures_are_awaited_even_when_the_body_raises(gate: threading.Event) -> None:
    finished: list[str] = []

    @task
    def slow() -> None:
        assert gate.wait(10), "never released"
        finished.append("slow")

    @task
    def release() -> None:
        gate.set()

    @flow(executor=ThreadExecutor(max_workers=4))
    def pipeline() -> None:
        slow.submit()
        release.submit()
        raise RuntimeError("body failed")

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert finished == ["slow"]
    assert flow_run.task_runs[0].state.name == "Completed"


def test_a_failing_flow_raises_the_first_reference_failure_when_called() -> None:
    @flow
    def pipeline() -> None:
        broken.submit("from a task")

    with pytest.raises(ValueError, match="from a task"):
        pipeline()


# --- flow retries ----------------------------------------------------------------------------


def test_flow_retries_rerun_the_body_and_reuse_completed_task_runs(
    reflow_clock: VirtualClock,
) -> None:
    calls = Calls()

    @task
    def extract() -> int:
        calls.hit("extract")
        return 1

    @task
    def transform(x: int) -> int:
        if calls.hit("transform") < 3:
            raise ConnectionError("flaky")
        return x + 1

    @flow(retries=2)
    def pipeline() -> int:
        calls.hit("body")
        return transform(extract.submit())

    flow_run = pipeline.run()

    assert flow_run.result() == 2
    assert calls.counts == Counter({"body": 3, "extract": 1, "transform": 3})
    assert flow_run.attempts == 3
    assert names(flow_run.states) == [
        "Pending", "Running", "AwaitingRetry", "Retrying", "AwaitingRetry", "Retrying",
        "Completed",
    ]  # fmt: skip
    assert [s.attempt for s in flow_run.states if s.name in ("Running", "Retrying")] == [1, 2, 3]
    extract_run, transform_run = flow_run.task_runs
    assert len(extract_run.attempts) == 1
    assert transform_run.state.name == "Completed"
    assert transform_run.upstream == (extract_run.id,)
    assert [(r.key, r.state.name) for r in flow_run.superseded] == [
        ("transform-0", "Failed"), ("transform-0", "Failed")
    ]  # fmt: skip


def test_flow_retry_states_explain_the_failure(reflow_clock: VirtualClock) -> None:
    @flow(retries=1, retry_delay_seconds=5)
    def pipeline() -> None:
        broken("attempt failed")

    flow_run = pipeline.run()

    awaiting = [s for s in flow_run.states if s.name == "AwaitingRetry"]
    assert len(awaiting) == 1
    assert "attempt 1 failed" in awaiting[0].message
    assert "attempt failed" in awaiting[0].message
    assert "retrying in 5 s" in awaiting[0].message
    assert awaiting[0].is_scheduled()
    assert flow_run.state.name == "Failed"
    assert flow_run.attempts == 2


def test_flow_retry_delays_use_the_virtual_clock(reflow_clock: VirtualClock) -> None:
    script = Script(ValueError, ValueError, ValueError, "ok")

    @flow(retries=3, retry_delay_seconds=[10, 20, 40])
    def pipeline() -> str:
        result: str = script.step()
        return result

    assert pipeline() == "ok"
    assert reflow_clock.waits == [10, 20, 40]
    assert script.calls == 4


def test_a_constant_flow_retry_delay(reflow_clock: VirtualClock) -> None:
    @flow(retries=2, retry_delay_seconds=7)
    def pipeline() -> None:
        broken()

    assert pipeline.run().state.is_failed()
    assert reflow_clock.waits == [7, 7]


def test_a_flow_retried_for_a_failed_reference_task_reuses_the_other_runs(
    reflow_clock: VirtualClock,
) -> None:
    calls = Calls()

    @task
    def stable(i: int) -> int:
        calls.hit(f"stable {i}")
        return i

    @task
    def flaky() -> str:
        if calls.hit("flaky") == 1:
            raise ConnectionError("first time")
        return "ok"

    @flow(retries=1)
    def pipeline() -> None:
        stable.map([0, 1, 2])
        flaky.submit()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert calls.counts == Counter({"stable 0": 1, "stable 1": 1, "stable 2": 1, "flaky": 2})
    assert [r.key for r in flow_run.task_runs] == [
        "stable-0[0]", "stable-0[1]", "stable-0[2]", "flaky-0"
    ]  # fmt: skip


def test_fail_raised_in_the_body_is_not_retried(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @flow(retries=3)
    def pipeline() -> None:
        calls.hit("body")
        raise Fail("give up now")

    flow_run = pipeline.run()

    assert flow_run.state.is_failed()
    assert calls["body"] == 1
    assert reflow_clock.waits == []


def test_a_flow_retry_reruns_task_runs_that_were_not_completed(
    reflow_clock: VirtualClock,
) -> None:
    calls = Calls()

    @task
    def fragile() -> str:
        if calls.hit("fragile") == 1:
            raise ValueError("once")
        return "ok"

    @task
    def downstream(x: str) -> str:
        calls.hit("downstream")
        return x + "!"

    @flow(retries=1)
    def pipeline() -> str:
        return downstream.submit(fragile.submit()).result()

    flow_run = pipeline.run()

    assert flow_run.result() == "ok!"
    assert calls.counts == Counter({"fragile": 2, "downstream": 1})
    superseded = [(r.key, r.state.name) for r in flow_run.superseded]
    assert ("downstream-0", "TriggerFailed") in superseded


def test_a_flow_retry_never_hands_a_task_call_another_calls_result(
    reflow_clock: VirtualClock,
) -> None:
    """Two concurrent tasks each call `inc` inside; the order of those calls differs between
    attempts. Each must still get its own result back."""
    attempt = [0]
    gates: dict[str, threading.Event] = {}

    @task
    def inc(x: int) -> int:
        return x + 1

    @task
    def worker(name: str, x: int) -> int:
        first = "a" if attempt[0] == 1 else "b"  # who calls inc first, this attempt
        if name != first:
            assert gates[first].wait(10)
        value = inc(x)
        gates[name].set()
        if attempt[0] == 1:
            raise ConnectionError("failed after its nested call")
        return value

    @flow(retries=1, executor=ThreadExecutor(max_workers=4))
    def pipeline() -> list[Any]:
        attempt[0] += 1
        gates.clear()
        gates.update(a=threading.Event(), b=threading.Event())
        return [worker.submit("a", 1), worker.submit("b", 100)]

    flow_run = pipeline.run()

    assert flow_run.attempts == 2
    assert flow_run.result() == [2, 101]


# --- the flow timeout ------------------------------------------------------------------------


def test_timeout_seconds_ends_the_run_timed_out(gate: threading.Event) -> None:
    @task
    def wait_forever() -> str:
        gate.wait()
        return "released"

    @flow(timeout_seconds=0.2)
    def pipeline() -> str:
        result: str = wait_forever.submit().result()
        return result

    flow_run = pipeline.run()

    assert flow_run.state.name == "TimedOut"
    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, AttemptTimeout)
    assert "0.2" in flow_run.state.message


def test_a_timed_out_flow_raises_when_called(gate: threading.Event) -> None:
    @task
    def wait_forever() -> None:
        gate.wait()

    @flow(timeout_seconds=0.2)
    def pipeline() -> None:
        wait_forever.submit().wait()

    with pytest.raises(AttemptTimeout):
        pipeline()


def test_a_timed_out_flow_fires_on_failure(gate: threading.Event) -> None:
    seen: list[str] = []

    @task
    def wait_forever() -> None:
        gate.wait()

    @flow(timeout_seconds=0.2, on_failure=lambda f, r, s: seen.append(s.name))
    def pipeline() -> None:
        wait_forever.submit().wait()

    pipeline.run()
    assert seen == ["TimedOut"]


async def test_an_async_flow_times_out(gate: threading.Event) -> None:
    never = asyncio.Event()

    @task
    async def wait_forever() -> None:
        await never.wait()

    @flow(timeout_seconds=0.2)
    async def pipeline() -> None:
        await wait_forever()

    flow_run = await pipeline.run()

    assert flow_run.state.name == "TimedOut"


# --- hooks -----------------------------------------------------------------------------------


class HookLog:
    def __init__(self) -> None:
        self.calls: list[tuple[str, Flow[..., Any], FlowRun, State[Any]]] = []

    def hook(self, kind: str) -> Any:
        def record(f: Flow[..., Any], flow_run: FlowRun, state: State[Any]) -> None:
            self.calls.append((kind, f, flow_run, state))

        return record

    def hooks(self) -> dict[str, Any]:
        kinds = ("on_completion", "on_failure", "on_cancellation", "on_crashed")
        return {kind: self.hook(kind) for kind in kinds}

    @property
    def kinds(self) -> list[tuple[str, str]]:
        return [(kind, state.name) for kind, _, _, state in self.calls]


def test_on_completion_fires_with_flow_run_and_state() -> None:
    log = HookLog()

    @flow(**log.hooks())
    def pipeline() -> int:
        return ok(3)

    flow_run = pipeline.run()

    assert log.kinds == [("on_completion", "Completed")]
    _, hooked_flow, hooked_run, state = log.calls[0]
    assert hooked_flow is pipeline
    assert hooked_run is flow_run
    assert state is flow_run.state
    assert state.result() == 3


def test_on_failure_fires_once_after_the_last_retry(reflow_clock: VirtualClock) -> None:
    log = HookLog()

    @flow(retries=2, **log.hooks())
    def pipeline() -> None:
        broken()

    flow_run = pipeline.run()

    assert log.kinds == [("on_failure", "Failed")]
    assert log.calls[0][2] is flow_run
    assert flow_run.attempts == 3


def test_on_crashed_fires_on_keyboard_interrupt_which_goes_on() -> None:
    log = HookLog()

    @flow(**log.hooks())
    def pipeline() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pipeline()

    assert log.kinds == [("on_crashed", "Crashed")]
    flow_run = log.calls[0][2]
    assert flow_run.state.name == "Crashed"
    assert flow_run.state.is_crashed()


def test_on_cancellation_fires_when_the_run_is_cancelled() -> None:
    log = HookLog()
    calls = Calls()

    @task
    def stop() -> None:
        flow_run = get_run_context().flow_run
        assert flow_run is not None
        flow_run.cancel()

    @task
    def later() -> None:
        calls.hit("later")

    @flow(**log.hooks())
    def pipeline() -> None:
        stop()
        later.submit()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Cancelled"
    assert log.kinds == [("on_cancellation", "Cancelled")]
    assert calls["later"] == 0
    assert flow_run.task_runs[-1].state.name == "Cancelled"


def test_hooks_registered_with_decorator_methods() -> None:
    seen: list[str] = []

    @flow
    def pipeline(fail: bool) -> None:
        if fail:
            raise ValueError("asked to")

    @pipeline.on_completion
    def done(f: Any, r: FlowRun, s: State[Any]) -> None:
        seen.append(f"completed {r.parameters['fail']}")

    @pipeline.on_failure
    def failed(f: Any, r: FlowRun, s: State[Any]) -> None:
        seen.append(f"failed {r.parameters['fail']}")

    pipeline.run(False)
    pipeline.run(True)

    assert seen == ["completed False", "failed True"]
    assert done.__name__ == "done"  # the decorator methods return the function


def test_async_hooks_are_awaited() -> None:
    seen: list[str] = []

    async def hook(f: Any, r: FlowRun, s: State[Any]) -> None:
        await asyncio.sleep(0)
        seen.append(s.name)

    @flow(on_completion=hook)
    def pipeline() -> None: ...

    pipeline()
    assert seen == ["Completed"]


async def test_hooks_of_an_async_flow() -> None:
    log = HookLog()

    @flow(**log.hooks())
    async def pipeline() -> None:
        raise ValueError("async body")

    flow_run = await pipeline.run()

    assert log.kinds == [("on_failure", "Failed")]
    assert log.calls[0][2] is flow_run


def test_no_hook_fires_on_a_pause() -> None:
    from reflow import Pause

    log = HookLog()

    @task
    def hold() -> None:
        raise Pause("hold")

    @flow(**log.hooks())
    def pipeline() -> None:
        hold()

    assert pipeline.run().state.is_paused()
    assert log.calls == []


def test_a_raising_hook_is_recorded_and_logged_and_the_state_stands(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []

    def bad_hook(f: Any, r: FlowRun, s: State[Any]) -> None:
        raise RuntimeError("hook broke")

    def good_hook(f: Any, r: FlowRun, s: State[Any]) -> None:
        seen.append("good")

    @flow(on_completion=[bad_hook, good_hook])
    def pipeline() -> int:
        return ok(5)

    with caplog.at_level(logging.ERROR, logger="reflow.flow"):
        flow_run = pipeline.run()

    assert flow_run.state.name == "Completed"
    assert flow_run.result() == 5
    assert len(flow_run.hook_errors) == 1
    assert isinstance(flow_run.hook_errors[0], RuntimeError)
    assert str(flow_run.hook_errors[0]) == "hook broke"
    assert seen == ["good"]  # the hooks after a raising one still run
    records = [r for r in caplog.records if "bad_hook" in r.getMessage()]
    assert len(records) == 1
    assert "pipeline" in records[0].getMessage()
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is flow_run.hook_errors[0]


def test_a_raising_failure_hook_does_not_change_the_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def bad_hook(f: Any, r: FlowRun, s: State[Any]) -> None:
        raise RuntimeError("hook broke")

    @flow(on_failure=bad_hook)
    def pipeline() -> None:
        broken("the real failure")

    with (
        caplog.at_level(logging.ERROR, logger="reflow.flow"),
        pytest.raises(ValueError, match="the real failure"),
    ):
        pipeline()


def test_state_result_of_a_cancelled_flow_raises_state_error() -> None:
    @task
    def stop() -> None:
        get_run_context().flow_run.cancel()  # type: ignore[union-attr]

    @flow
    def pipeline() -> None:
        stop()

    with pytest.raises(StateError, match="Cancelled"):
        pipeline()
