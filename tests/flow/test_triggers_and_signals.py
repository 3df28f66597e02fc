"""Triggers (when a task with upstreams runs), skip propagation, allow_failure, and the task
signals Skip, Fail, Retry and Pause inside a flow (Pause with FlowPaused and resume)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest

from reflow import (
    Fail,
    FlowPaused,
    Pause,
    Retry,
    Skip,
    TriggerFailedError,
    allow_failure,
    flow,
    get_run_context,
    task,
)
from reflow.states import State, StateError
from reflow.testing import VirtualClock
from reflow.triggers import (
    all_failed,
    all_finished,
    all_successful,
    always_run,
    any_failed,
    any_successful,
    manual_only,
)


class Calls:
    """Counts calls by name, from any thread."""

    def __init__(self) -> None:
        self.counts = Counter[str]()
        self._lock = threading.Lock()

    def hit(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    def __getitem__(self, name: str) -> int:
        return self.counts[name]


@task
def ok(value: Any = "ok") -> Any:
    return value


@task
def broken(message: str = "broken") -> Any:
    raise ValueError(message)


def states_by_key(flow_run: Any) -> dict[str, str]:
    return {r.key: r.state.name for r in flow_run.task_runs}


# --- each trigger ----------------------------------------------------------------------------


def test_all_successful_is_the_default_and_runs_after_successes() -> None:
    @task
    def join(*values: Any) -> list[Any]:
        return list(values)

    @flow
    def pipeline() -> list[Any]:
        return join.submit(ok.submit(1), ok.submit(2)).result()

    assert pipeline() == [1, 2]
    assert join.trigger is None


def test_all_successful_not_met_ends_trigger_failed_without_running() -> None:
    calls = Calls()

    @task
    def after(a: Any, b: Any) -> None:
        calls.hit("after")

    @flow
    def pipeline() -> None:
        after.submit(ok.submit(), broken.submit())

    flow_run = pipeline.run()

    run = flow_run.task_runs[-1]
    assert calls["after"] == 0
    assert run.state.name == "TriggerFailed"
    assert run.state.is_failed()
    assert isinstance(run.state.exception, TriggerFailedError)
    assert "broken-0 (Failed)" in run.state.message
    assert "all_successful" in run.state.message
    assert run.attempts == []
    assert [s.name for s in run.states] == ["Pending", "TriggerFailed"]
    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, TriggerFailedError)


def test_a_direct_call_whose_trigger_fails_raises_trigger_failed_error() -> None:
    @flow
    def pipeline() -> Any:
        return ok(broken.submit())

    with pytest.raises(TriggerFailedError, match="ok-0"):
        pipeline()


@pytest.mark.parametrize("trigger", [all_finished, always_run], ids=["all_finished", "always_run"])
def test_all_finished_runs_whatever_the_upstreams_did(trigger: Any) -> None:
    received: list[Any] = []

    @task(trigger=trigger)
    def cleanup(a: Any, b: Any) -> str:
        received.extend([a, b])
        return "cleaned"

    @flow
    def pipeline() -> str:
        return cleanup.submit(ok.submit(1), broken.submit("bad")).result()

    flow_run = pipeline.run()

    assert flow_run.result() == "cleaned"
    assert received[0] == 1
    failed = received[1]
    assert isinstance(failed, State)  # a failed upstream arrives as its state
    assert failed.name == "Failed"
    assert str(failed.exception) == "bad"


def test_always_run_is_all_finished() -> None:
    assert always_run is all_finished


def test_any_failed_runs_only_when_an_upstream_failed() -> None:
    calls = Calls()

    @task(trigger=any_failed)
    def alert(*upstream: Any) -> str:
        calls.hit("alert")
        return "alerted"

    @flow
    def failing() -> Any:
        return alert.submit(ok.submit(), broken.submit()).result()

    @flow
    def fine() -> None:
        alert.submit(ok.submit(), ok.submit())

    assert failing() == "alerted"
    assert calls["alert"] == 1
    fine_run = fine.run()
    assert fine_run.task_runs[-1].state.name == "TriggerFailed"
    assert "any_failed" in fine_run.task_runs[-1].state.message
    assert calls["alert"] == 1


def test_all_failed_runs_only_when_every_upstream_failed() -> None:
    calls = Calls()

    @task(trigger=all_failed)
    def fallback(*upstream: Any) -> str:
        calls.hit("fallback")
        return "fallback"

    @flow
    def every_one_failed() -> None:
        fallback.submit(broken.submit(), broken.submit())

    @flow
    def one_succeeded() -> None:
        fallback.submit(broken.submit(), ok.submit())

    all_bad = every_one_failed.run()
    some_good = one_succeeded.run()

    assert all_bad.task_runs[-1].state.name == "Completed"
    assert some_good.task_runs[-1].state.name == "TriggerFailed"
    assert calls["fallback"] == 1


def test_any_successful_runs_when_one_upstream_completed() -> None:
    calls = Calls()

    @task(trigger=any_successful)
    def either(*upstream: Any) -> str:
        calls.hit("either")
        return "ran"

    @flow
    def one_ok() -> None:
        either.submit(broken.submit(), ok.submit())

    @flow
    def none_ok() -> None:
        either.submit(broken.submit(), broken.submit())

    assert one_ok.run().task_runs[-1].state.name == "Completed"
    assert none_ok.run().task_runs[-1].state.name == "TriggerFailed"
    assert calls["either"] == 1


def test_a_custom_trigger_sees_the_upstream_states() -> None:
    seen: list[list[str]] = []

    def at_least_two(states: list[State[Any]]) -> bool:
        seen.append(sorted(s.name for s in states))
        return sum(s.is_completed() for s in states) >= 2

    @task(trigger=at_least_two)
    def vote(*values: Any) -> str:
        return "passed"

    @flow
    def pipeline() -> str:
        return vote.submit(ok.submit(), ok.submit(), broken.submit()).result()

    assert pipeline() == "passed"
    assert seen == [["Completed", "Completed", "Failed"]]


def test_a_trigger_that_raises_fails_the_task_with_a_note() -> None:
    def bad_trigger(states: list[State[Any]]) -> bool:
        raise RuntimeError("trigger bug")

    @task(trigger=bad_trigger)
    def after(x: Any) -> None: ...

    @flow
    def pipeline() -> None:
        after.submit(ok.submit())

    run = pipeline.run().task_runs[-1]

    assert run.state.name == "Failed"
    assert isinstance(run.state.exception, RuntimeError)
    assert any("bad_trigger" in note for note in run.state.exception.__notes__)


def test_a_task_without_upstreams_runs_under_all_failed() -> None:
    @task(trigger=all_failed)
    def lonely() -> str:
        return "ran"

    @flow
    def pipeline() -> str:
        return lonely.submit().result()

    assert pipeline() == "ran"


def test_manual_only_pauses_the_flow_run_and_resume_runs_it() -> None:
    calls = Calls()

    @task
    def extract() -> int:
        calls.hit("extract")
        return 1

    @task(trigger=manual_only)
    def approve(x: int) -> int:
        calls.hit("approve")
        assert get_run_context().task_run.resumed  # type: ignore[union-attr]
        return x + 1

    @flow
    def pipeline() -> int:
        return approve.submit(extract.submit()).result()

    with pytest.raises(FlowPaused) as info:
        pipeline()
    flow_run = info.value.flow_run

    assert flow_run.state.is_paused()
    assert states_by_key(flow_run) == {"extract-0": "Completed", "approve-0": "Paused"}
    assert calls["approve"] == 0
    assert "approve" in str(info.value)

    state = flow_run.resume()

    assert state.name == "Completed"
    assert state is flow_run.state
    assert flow_run.result() == 2
    assert calls.counts == Counter({"extract": 1, "approve": 1})
    assert states_by_key(flow_run) == {"extract-0": "Completed", "approve-0": "Completed"}


def test_trigger_failed_is_a_failed_type_state() -> None:
    state = _failed_trigger_state()
    assert state.name == "TriggerFailed"
    assert state.is_failed()
    assert state.is_final()
    with pytest.raises(TriggerFailedError):
        state.result()


def _failed_trigger_state() -> State[Any]:
    @task
    def after(x: Any) -> None: ...

    @flow
    def pipeline() -> None:
        after.submit(broken.submit())

    return pipeline.run().task_runs[-1].state


def test_the_trigger_functions_directly() -> None:
    from reflow.states import Completed, Failed, Skipped, TimedOut

    done, failed, skipped, timed_out = Completed(1), Failed(), Skipped(), TimedOut()
    assert all_successful([done, skipped])
    assert not all_successful([done, failed])
    assert all_finished([failed, timed_out])
    assert any_failed([done, timed_out])
    assert not any_failed([done, skipped])
    assert all_failed([failed, timed_out])
    assert not all_failed([failed, skipped])
    assert any_successful([failed, skipped])
    assert not any_successful([failed, timed_out])
    with pytest.raises(Pause):
        manual_only([done])


# --- skips -----------------------------------------------------------------------------------


def test_skip_propagates_down_a_three_level_chain() -> None:
    calls = Calls()

    @task
    def first() -> int:
        calls.hit("first")
        raise Skip("nothing new")

    @task
    def second(x: int) -> int:
        calls.hit("second")
        return x

    @task
    def third(x: int) -> int:
        calls.hit("third")
        return x

    @flow
    def pipeline() -> None:
        third.submit(second.submit(first.submit()))

    flow_run = pipeline.run()

    assert states_by_key(flow_run) == {
        "first-0": "Skipped", "second-0": "Skipped", "third-0": "Skipped"
    }  # fmt: skip
    assert calls.counts == Counter({"first": 1})
    first_run, second_run, third_run = flow_run.task_runs
    assert first_run.state.message == "nothing new"
    assert "upstream first-0 skipped" in second_run.state.message
    assert "upstream second-0 skipped" in third_run.state.message
    assert flow_run.state.name == "Completed"  # Skipped is a completed state


def test_skip_on_upstream_skip_false_lets_the_task_run_with_the_skip_result() -> None:
    @task
    def maybe() -> int:
        raise Skip("no data", result=0)

    @task(skip_on_upstream_skip=False)
    def summarize(x: int) -> str:
        return f"summary of {x}"

    @flow
    def pipeline() -> str:
        return summarize.submit(maybe.submit()).result()

    flow_run = pipeline.run()

    assert flow_run.result() == "summary of 0"
    assert states_by_key(flow_run) == {"maybe-0": "Skipped", "summarize-0": "Completed"}


def test_skipped_counts_as_success_for_triggers() -> None:
    seen: list[bool] = []

    def record(states: list[State[Any]]) -> bool:
        verdict = all_successful(states)
        seen.append(verdict)
        return verdict

    @task
    def skipper() -> None:
        raise Skip("skip")

    @task(skip_on_upstream_skip=False, trigger=record)
    def after(x: Any, y: Any) -> str:
        return "ran"

    @flow
    def pipeline() -> str:
        return after.submit(skipper.submit(), ok.submit()).result()

    assert pipeline() == "ran"
    assert seen == [True]


def test_skip_from_a_direct_call_returns_its_result() -> None:
    @task
    def skipper() -> str:
        raise Skip("skip", result="default")

    @flow
    def pipeline() -> str:
        return skipper()

    flow_run = pipeline.run()

    assert flow_run.result() == "default"
    assert flow_run.task_runs[0].state.name == "Skipped"


def test_skip_is_never_retried(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @task(retries=3)
    def skipper() -> None:
        calls.hit("skipper")
        raise Skip("skip")

    @flow
    def pipeline() -> None:
        skipper.submit()

    assert pipeline.run().task_runs[0].state.name == "Skipped"
    assert calls["skipper"] == 1


# --- allow_failure ---------------------------------------------------------------------------


def test_allow_failure_passes_the_failed_upstreams_state() -> None:
    received: list[Any] = []

    @task
    def report(result: Any) -> str:
        received.append(result)
        return "reported"

    @flow
    def pipeline() -> str:
        return report.submit(allow_failure(broken.submit("bad"))).result()

    flow_run = pipeline.run()

    assert flow_run.task_runs[-1].state.name == "Completed"
    (state,) = received
    assert isinstance(state, State)
    assert state.is_failed()
    assert str(state.exception) == "bad"
    assert flow_run.task_runs[-1].upstream == (flow_run.task_runs[0].id,)


def test_allow_failure_passes_the_value_of_a_completed_upstream() -> None:
    @task
    def report(result: Any) -> Any:
        return result

    @flow
    def pipeline() -> Any:
        return report(allow_failure(ok.submit(7)))

    assert pipeline() == 7


def test_allow_failure_only_excuses_the_wrapped_upstream() -> None:
    calls = Calls()

    @task
    def after(a: Any, b: Any) -> None:
        calls.hit("after")

    @flow
    def pipeline() -> None:
        after.submit(allow_failure(broken.submit()), broken.submit())

    run = pipeline.run().task_runs[-1]

    assert run.state.name == "TriggerFailed"
    assert "broken-1 (Failed)" in run.state.message
    assert "broken-0" not in run.state.message
    assert calls["after"] == 0


def test_allow_failure_in_a_list_argument() -> None:
    received: list[Any] = []

    @task
    def report(results: list[Any]) -> None:
        received.extend(results)

    @flow
    def pipeline() -> None:
        report.submit([allow_failure(broken.submit()), ok.submit(3)])

    pipeline.run()

    assert isinstance(received[0], State)
    assert received[1] == 3


# --- signals ---------------------------------------------------------------------------------


def test_skip_signal_ends_the_run_skipped_with_its_message_and_result() -> None:
    @task
    def skipper() -> None:
        raise Skip("already done", result=42)

    @flow
    def pipeline() -> Any:
        return skipper.submit()

    flow_run = pipeline.run()

    run = flow_run.task_runs[0]
    assert run.state.name == "Skipped"
    assert run.state.is_completed()
    assert run.state.message == "already done"
    assert run.state.data == 42
    assert flow_run.result() == 42


def test_fail_signal_is_not_retried_even_with_retries(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @task(retries=3)
    def give_up() -> None:
        calls.hit("give_up")
        raise Fail("bad input, no point retrying")

    @flow
    def pipeline() -> None:
        give_up.submit()

    flow_run = pipeline.run()

    run = flow_run.task_runs[0]
    assert calls["give_up"] == 1
    assert run.state.name == "Failed"
    assert isinstance(run.state.exception, Fail)
    assert len(run.attempts) == 1
    assert reflow_clock.waits == []
    assert flow_run.state.is_failed()
    assert isinstance(flow_run.state.exception, Fail)


def test_retry_signal_is_retried_even_when_retry_on_excludes_it(
    reflow_clock: VirtualClock,
) -> None:
    calls = Calls()

    @task(retries=2, retry_on=[KeyError], retry_delay_seconds=3)
    def again() -> str:
        calls.hit("again")
        if calls["again"] < 3:
            raise Retry("not yet")
        return "done"

    @flow
    def pipeline() -> str:
        return again.submit().result()

    flow_run = pipeline.run()

    assert flow_run.result() == "done"
    assert calls["again"] == 3
    assert len(flow_run.task_runs[0].attempts) == 3
    assert reflow_clock.waits == [3, 3]


def test_retry_on_excludes_other_errors(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @task(retries=2, retry_on=[KeyError])
    def wrong() -> None:
        calls.hit("wrong")
        raise ValueError("not retried")

    @flow
    def pipeline() -> None:
        wrong.submit()

    assert pipeline.run().task_runs[0].state.name == "Failed"
    assert calls["wrong"] == 1


# --- Pause and resume ------------------------------------------------------------------------


def test_pause_stops_the_flow_and_resume_carries_on_without_rerunning_completed_tasks() -> None:
    calls = Calls()
    resumed_flags: list[bool] = []

    @task
    def prepare() -> int:
        calls.hit("prepare")
        return 10

    @task
    def review(x: int) -> int:
        calls.hit("review")
        run = get_run_context().task_run
        assert run is not None
        resumed_flags.append(run.resumed)
        if not run.resumed:
            raise Pause("needs a human")
        return x + 1

    @task
    def publish(x: int) -> int:
        calls.hit("publish")
        return x * 2

    @flow
    def pipeline() -> int:
        prepared = prepare()
        reviewed = review.submit(prepared)
        return publish(reviewed)

    with pytest.raises(FlowPaused) as info:
        pipeline()
    flow_run = info.value.flow_run

    assert flow_run.state.name == "Paused"
    assert "review-0" in flow_run.state.message
    assert states_by_key(flow_run) == {
        "prepare-0": "Completed", "review-0": "Paused", "publish-0": "Pending"
    }  # fmt: skip
    paused_run = flow_run.task_runs[1]
    assert paused_run.state.message == "needs a human"
    assert isinstance(paused_run.state.exception, Pause)
    assert calls.counts == Counter({"prepare": 1, "review": 1})

    state = flow_run.resume()

    assert state.name == "Completed"
    assert flow_run.result() == 22
    assert calls.counts == Counter({"prepare": 1, "review": 2, "publish": 1})
    assert resumed_flags == [False, True]
    assert states_by_key(flow_run) == {
        "prepare-0": "Completed", "review-0": "Completed", "publish-0": "Completed"
    }  # fmt: skip
    assert flow_run.task_runs[1].resumed is True
    assert flow_run.task_runs[0].resumed is False
    assert paused_run in flow_run.superseded
    assert [s.name for s in flow_run.states] == [
        "Pending", "Running", "Paused", "Running", "Completed"
    ]  # fmt: skip


def test_pause_is_never_retried(reflow_clock: VirtualClock) -> None:
    calls = Calls()

    @task(retries=3)
    def waiter() -> None:
        calls.hit("waiter")
        raise Pause("hold")

    @flow(retries=2)
    def pipeline() -> None:
        waiter()

    flow_run = pipeline.run()

    assert flow_run.state.name == "Paused"
    assert calls["waiter"] == 1
    assert flow_run.attempts == 1
    assert reflow_clock.waits == []


def test_pause_in_a_submitted_task_whose_result_is_unused_still_pauses_the_run() -> None:
    @task
    def hold() -> None:
        if not get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise Pause("hold")

    @flow
    def pipeline() -> str:
        hold.submit()
        return "body ended"

    flow_run = pipeline.run()

    assert flow_run.state.name == "Paused"
    assert flow_run.resume().name == "Completed"
    assert flow_run.result() == "body ended"


def test_a_downstream_of_a_paused_task_waits_and_runs_on_resume() -> None:
    calls = Calls()

    @task
    def hold() -> int:
        if not get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise Pause("hold")
        return 1

    @task
    def after(x: int) -> int:
        calls.hit("after")
        return x + 1

    @flow
    def pipeline() -> None:
        after.submit(hold.submit())

    flow_run = pipeline.run()

    assert states_by_key(flow_run) == {"hold-0": "Paused", "after-0": "Pending"}
    assert calls["after"] == 0
    flow_run.resume()
    assert states_by_key(flow_run) == {"hold-0": "Completed", "after-0": "Completed"}
    assert calls["after"] == 1
    hold_run, after_run = flow_run.task_runs
    assert hold_run.resumed is True
    assert after_run.resumed is False  # it was only blocked behind the paused run


def test_a_paused_run_can_pause_again_and_be_resumed_again() -> None:
    resumes: list[bool] = []

    @task
    def twice() -> str:
        resumes.append(get_run_context().task_run.resumed)  # type: ignore[union-attr]
        if len(resumes) < 3:
            raise Pause(f"pause {len(resumes)}")
        return "finally"

    @flow
    def pipeline() -> str:
        return twice()

    flow_run = pipeline.run()
    assert flow_run.state.is_paused()
    assert flow_run.resume().is_paused()
    assert flow_run.resume().name == "Completed"
    assert flow_run.result() == "finally"
    assert resumes == [False, True, True]


def test_return_state_of_a_paused_flow_is_the_paused_state() -> None:
    @task
    def hold() -> None:
        raise Pause("hold")

    @flow
    def pipeline() -> None:
        hold()

    state = pipeline(return_state=True)

    assert state.name == "Paused"
    with pytest.raises(StateError):
        state.result()


async def test_an_async_flow_pauses_and_resumes() -> None:
    calls = Calls()

    @task
    async def first() -> int:
        calls.hit("first")
        return 1

    @task
    async def hold(x: int) -> int:
        calls.hit("hold")
        if not get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise Pause("hold")
        return x + 1

    @flow
    async def pipeline() -> int:
        return await hold(await first())

    with pytest.raises(FlowPaused) as info:
        await pipeline()
    flow_run = info.value.flow_run

    state = await flow_run.resume_async()

    assert state.name == "Completed"
    assert flow_run.result() == 2
    assert calls.counts == Counter({"first": 1, "hold": 2})


def test_resuming_a_run_that_is_not_paused_is_a_state_error() -> None:
    @flow
    def pipeline() -> int:
        return ok(1)

    flow_run = pipeline.run()

    with pytest.raises(StateError, match="Completed, not Paused"):
        flow_run.resume()


def test_resuming_a_failed_run_is_a_state_error() -> None:
    @flow
    def pipeline() -> None:
        broken()

    flow_run = pipeline.run()

    with pytest.raises(StateError, match="Failed, not Paused"):
        flow_run.resume()


def test_a_paused_map_element_is_the_only_one_run_again_on_resume() -> None:
    calls = Calls()

    @task
    def element(x: int) -> int:
        calls.hit(f"element {x}")
        if x == 1 and not get_run_context().task_run.resumed:  # type: ignore[union-attr]
            raise Pause("check element 1")
        return x * 10

    @flow
    def pipeline() -> list[int]:
        return element.map([0, 1, 2]).result()

    flow_run = pipeline.run()

    assert states_by_key(flow_run) == {
        "element-0[0]": "Completed", "element-0[1]": "Paused", "element-0[2]": "Completed"
    }  # fmt: skip
    assert "element-0[1]" in flow_run.state.message

    flow_run.resume()

    assert flow_run.result() == [0, 10, 20]
    assert calls.counts == Counter({"element 0": 1, "element 1": 2, "element 2": 1})
