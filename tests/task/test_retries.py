"""Retry options with Prefect's names: retries, delays, backoff, jitter, conditions, retry_on."""

from __future__ import annotations

import asyncio
import importlib
import logging
from datetime import timedelta
from typing import Any

import pytest

from reflow import Task, task
from reflow.retry import waits
from reflow.states import State
from reflow.task import Fail, Retry, Skip, TaskRun, exponential_backoff
from reflow.task.options import Jittered
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Recorder, Script

# --- retries ---------------------------------------------------------------------------------


@pytest.mark.parametrize("retries", [0, 1, 3])
def test_attempts_are_one_plus_retries(
    flavor: Flavor, reflow_clock: VirtualClock, retries: int
) -> None:
    script = Script(ValueError)
    t = task(retries=retries)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert script.calls == 1 + retries


def test_a_success_after_failures_is_returned(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(ValueError, ValueError, "ok")
    t = task(retries=2)(flavor.function(script))

    assert flavor.call(t) == "ok"
    assert script.calls == 3


def test_the_gave_up_note_is_on_the_raised_exception(reflow_clock: VirtualClock) -> None:
    t = task(retries=2)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure") as info:
        t()
    assert any(n.startswith("reflow: gave up after 3 attempts") for n in info.value.__notes__)


def test_default_retries_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, reflow_clock: VirtualClock
) -> None:
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRIES", "2")
    script = Script(ValueError)
    t = task(script.step)
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRIES", "5")  # read at decoration, not at call

    assert t.retries == 2
    with pytest.raises(ValueError, match="failure"):
        t()
    assert script.calls == 3


def test_default_retries_also_apply_to_the_decorator_with_options(
    monkeypatch: pytest.MonkeyPatch, reflow_clock: VirtualClock
) -> None:
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRIES", "1")

    @task(name="x")
    def fetch() -> None:
        raise ValueError

    assert fetch.retries == 1
    assert task(retries=0)(fetch.fn).retries == 0  # an explicit value wins


def test_default_retries_unset_or_empty_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REFLOW_TASK_DEFAULT_RETRIES", raising=False)
    assert task(Script(1).step).retries == 0
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRIES", " ")
    assert task(Script(1).step).retries == 0


@pytest.mark.parametrize("raw", ["two", "-1", "1.5"])
def test_bad_default_retries_in_the_environment_fail_at_decoration(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRIES", raw)

    with pytest.raises(ValueError, match="REFLOW_TASK_DEFAULT_RETRIES"):
        task(Script(1).step)


def test_default_retry_delay_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, reflow_clock: VirtualClock
) -> None:
    monkeypatch.setenv("REFLOW_TASK_DEFAULT_RETRY_DELAY_SECONDS", "1.5")
    t = task(retries=2)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    assert reflow_clock.waits == [1.5, 1.5]


# --- retry_delay_seconds ---------------------------------------------------------------------


def test_no_delay_by_default(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    t = task(retries=3)(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert reflow_clock.waits == []


@pytest.mark.parametrize("delay", [2, 2.0, timedelta(seconds=2)])
def test_delay_as_a_number(flavor: Flavor, reflow_clock: VirtualClock, delay: Any) -> None:
    t = task(retries=3, retry_delay_seconds=delay)(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert reflow_clock.waits == [2.0, 2.0, 2.0]


def test_delay_as_a_list_whose_last_value_repeats(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    t = task(retries=5, retry_delay_seconds=[1, 10, 100])(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert reflow_clock.waits == [1, 10, 100, 100, 100]


def test_delay_list_longer_than_retries_uses_its_start(reflow_clock: VirtualClock) -> None:
    t = task(retries=2, retry_delay_seconds=[1, 2, 3, 4])(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    assert reflow_clock.waits == [1, 2]


def test_delay_as_a_callable_of_the_retries(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    asked: list[int] = []

    def delays(retries: int) -> list[float]:
        asked.append(retries)
        return [0.5 * (n + 1) for n in range(retries)]

    t = task(retries=3, retry_delay_seconds=delays)(flavor.function(Script(ValueError)))
    assert set(asked) == {3}  # asked at decoration
    asked.clear()

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert reflow_clock.waits == [0.5, 1.0, 1.5]
    assert asked == []  # not at each call


def test_a_callable_returning_an_empty_list_means_no_delay(reflow_clock: VirtualClock) -> None:
    t = task(retries=2, retry_delay_seconds=lambda retries: [])(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    assert reflow_clock.waits == []


def test_a_callable_must_return_a_list() -> None:
    with pytest.raises(TypeError, match="retry_delay_seconds"):
        task(retries=1, retry_delay_seconds=lambda retries: 3)(Script(1).step)


def test_exponential_backoff(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    t = task(retries=4, retry_delay_seconds=exponential_backoff(backoff_factor=10))(
        flavor.function(Script(ValueError))
    )

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert reflow_clock.waits == [10, 20, 40, 80]


def test_exponential_backoff_delays() -> None:
    delays = exponential_backoff(0.5)

    assert delays(0) == []
    assert delays(3) == [0.5, 1.0, 2.0]
    assert "exponential_backoff" in repr(delays)


def test_exponential_backoff_rejects_a_negative_factor() -> None:
    with pytest.raises(ValueError, match="backoff_factor"):
        exponential_backoff(-1)


# --- retry_jitter_factor ---------------------------------------------------------------------


def test_jitter_is_applied_and_bounded(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    t = task(retries=30, retry_delay_seconds=10, retry_jitter_factor=0.5)(
        flavor.function(Script(ValueError))
    )

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert len(reflow_clock.waits) == 30
    assert all(5.0 <= w <= 15.0 for w in reflow_clock.waits)
    assert len(set(reflow_clock.waits)) > 1  # really drawn, not the bare delay
    assert any(w > 10 for w in reflow_clock.waits)
    assert any(w < 10 for w in reflow_clock.waits)


def test_jitter_above_one_may_double_the_delay_and_never_goes_below_zero(
    reflow_clock: VirtualClock,
) -> None:
    t = task(retries=30, retry_delay_seconds=[1, 4], retry_jitter_factor=2)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    first, *rest = reflow_clock.waits
    assert 0 <= first <= 3
    assert all(0 <= w <= 12 for w in rest)
    assert any(w > 4 for w in rest)


def test_jitter_draws_uniformly_between_the_bounds(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[float, float]] = []

    def uniform(low: float, high: float) -> float:
        drawn.append((low, high))
        return high

    monkeypatch.setattr(importlib.import_module("reflow.task.options").random, "uniform", uniform)
    wait = Jittered(waits.fixed(4), 0.25)

    assert wait(None) == 5.0  # type: ignore[arg-type]
    assert drawn == [(3.0, 5.0)]
    assert "retry_jitter_factor=0.25" in repr(wait)


def test_zero_jitter_keeps_the_delays(reflow_clock: VirtualClock) -> None:
    t = task(retries=2, retry_delay_seconds=[1, 2], retry_jitter_factor=0)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    assert reflow_clock.waits == [1, 2]


# --- retry_on --------------------------------------------------------------------------------


def test_retry_on_retries_only_the_given_exceptions(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ConnectionError, KeyError, "never")
    t = task(retries=5, retry_on=ConnectionError)(flavor.function(script))

    with pytest.raises(KeyError) as info:
        flavor.call(t)
    assert info.value is script.raised[-1]
    assert script.calls == 2


@pytest.mark.parametrize("retry_on", [(ConnectionError, KeyError), [ConnectionError, KeyError]])
def test_retry_on_takes_a_tuple_or_a_list(reflow_clock: VirtualClock, retry_on: Any) -> None:
    script = Script(ConnectionError, KeyError, "ok")
    t = task(retries=5, retry_on=retry_on)(script.step)

    assert t() == "ok"
    assert script.calls == 3


def test_retry_on_matches_subclasses(reflow_clock: VirtualClock) -> None:
    script = Script(ConnectionResetError, "ok")
    t = task(retries=1, retry_on=OSError)(script.step)

    assert t() == "ok"


def test_an_excluded_exception_is_not_retried_and_says_so(reflow_clock: VirtualClock) -> None:
    t = task(retries=3, retry_on=KeyError)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure") as info:
        t()
    assert any("not retried" in note for note in info.value.__notes__)


# --- retry_condition_fn ----------------------------------------------------------------------


@pytest.mark.parametrize("async_condition", [False, True], ids=["sync-fn", "async-fn"])
def test_retry_condition_fn_decides_each_retry(
    flavor: Flavor, reflow_clock: VirtualClock, async_condition: bool
) -> None:
    script = Script(ConnectionError, ConnectionError, KeyError, "never")
    seen: list[tuple[Task[..., Any], TaskRun, State[Any]]] = []

    def decide(t: Task[..., Any], run: TaskRun, state: State[Any]) -> bool:
        seen.append((t, run, state))
        return isinstance(state.exception, ConnectionError)

    async def decide_async(t: Task[..., Any], run: TaskRun, state: State[Any]) -> bool:
        await asyncio.sleep(0)
        return decide(t, run, state)

    t = task(retries=5, retry_condition_fn=decide_async if async_condition else decide)(
        flavor.function(script)
    )

    with pytest.raises(KeyError):
        flavor.call(t)
    assert script.calls == 3
    assert [s.name for _, _, s in seen] == ["Failed", "Failed", "Failed"]
    assert [s.attempt for _, _, s in seen] == [1, 2, 3]
    assert [s.exception for _, _, s in seen] == script.raised
    assert all(passed is t for passed, _, _ in seen)
    runs = {id(run) for _, run, _ in seen}
    assert len(runs) == 1


def test_retry_condition_fn_is_not_asked_when_no_retry_is_left(
    reflow_clock: VirtualClock,
) -> None:
    asked: list[int] = []

    def decide(t: Any, run: TaskRun, state: State[Any]) -> bool:
        asked.append(state.attempt)
        return True

    t = task(retries=1, retry_condition_fn=decide)(Script(ValueError).step)

    with pytest.raises(ValueError, match="failure"):
        t()
    assert asked == [1]


def test_retry_condition_fn_is_not_asked_about_excluded_exceptions(
    reflow_clock: VirtualClock,
) -> None:
    asked: list[int] = []
    t = task(retries=3, retry_on=KeyError, retry_condition_fn=lambda *a: asked.append(1) or True)(
        Script(ValueError).step
    )

    with pytest.raises(ValueError, match="failure"):
        t()
    assert asked == []


@pytest.mark.parametrize("async_condition", [False, True], ids=["sync-fn", "async-fn"])
def test_retry_condition_fn_that_raises_stops_retrying_and_is_recorded(
    flavor: Flavor,
    reflow_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    async_condition: bool,
) -> None:
    broken = RuntimeError("condition bug")

    def decide(t: Any, run: TaskRun, state: State[Any]) -> bool:
        raise broken

    async def decide_async(t: Any, run: TaskRun, state: State[Any]) -> bool:
        raise broken

    recorder = Recorder()
    script = Script(ValueError, "never")
    t = task(
        retries=3,
        retry_condition_fn=decide_async if async_condition else decide,
        on_failure=recorder.hook("on_failure"),
    )(flavor.function(script))

    with (
        caplog.at_level(logging.ERROR, logger="reflow.task"),
        pytest.raises(ValueError, match="failure") as info,
    ):
        flavor.call(t)

    assert script.calls == 1
    assert info.value is script.raised[0]
    assert any(
        "retry_condition_fn raised" in n and "condition bug" in n for n in info.value.__notes__
    )
    assert recorder.run.hook_errors == [broken]
    assert recorder.run.state.name == "Failed"
    assert any(
        r.name == "reflow.task" and "retry_condition_fn" in r.getMessage() and r.exc_info
        for r in caplog.records
    )


# --- signals ---------------------------------------------------------------------------------


def test_skip_ends_the_run_skipped_with_its_result(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(Skip("nothing to do", result="empty"))
    t = task(retries=3)(flavor.function(script))

    assert flavor.call(t) == "empty"
    state = flavor.state(t)

    assert script.calls == 2  # one per call: never retried
    assert state.name == "Skipped"
    assert state.is_skipped()
    assert state.is_completed()
    assert state.message == "nothing to do"
    assert state.result() == "empty"


def test_skip_without_result_returns_none(flavor: Flavor) -> None:
    t = task(flavor.function(Script(Skip("no"))))

    assert flavor.call(t) is None


def test_skip_is_never_retried_even_with_retry_on_matching(reflow_clock: VirtualClock) -> None:
    script = Script(Skip("no"))
    t = task(retries=3, retry_on=Exception)(script.step)

    assert t() is None
    assert script.calls == 1


def test_skip_fires_on_completion(flavor: Flavor) -> None:
    recorder = Recorder()
    t = task(**recorder.hooks())(flavor.function(Script(Skip("no"))))

    flavor.call(t)

    assert recorder.events == [("on_running", "Running", 1), ("on_completion", "Skipped", 1)]


def test_fail_ends_at_once_despite_retries(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    script = Script(Fail("bad input"))
    asked: list[Any] = []
    t = task(retries=5, retry_on=Exception, retry_condition_fn=lambda *a: asked.append(a) or True)(
        flavor.function(script)
    )

    state = flavor.state(t)

    assert script.calls == 1
    assert asked == []
    assert state.name == "Failed"
    assert state.exception is script.raised[0]
    with pytest.raises(Fail, match="bad input"):
        flavor.call(t)
    assert script.calls == 2


@pytest.mark.parametrize(
    "options",
    [
        {"retry_on": KeyError},
        {"retry_condition_fn": lambda t, run, state: False},
        {"retry_on": KeyError, "retry_condition_fn": lambda t, run, state: False},
    ],
    ids=["retry_on", "condition", "both"],
)
def test_retry_signal_forces_a_retry(
    flavor: Flavor, reflow_clock: VirtualClock, options: dict[str, Any]
) -> None:
    script = Script(Retry("again"), Retry("again"), "ok")
    t = task(retries=2, **options)(flavor.function(script))

    assert flavor.call(t) == "ok"
    assert script.calls == 3


def test_retry_signal_fails_when_retries_run_out(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(Retry)
    t = task(retries=2, retry_on=KeyError)(flavor.function(script))

    state = flavor.state(t)

    assert script.calls == 3
    assert state.name == "Failed"
    assert state.exception is script.raised[-1]
    assert isinstance(state.exception, Retry)


def test_retry_signal_with_no_retries_fails_at_once(reflow_clock: VirtualClock) -> None:
    script = Script(Retry("again"))
    t = task(script.step)

    with pytest.raises(Retry, match="again"):
        t()
    assert script.calls == 1


def test_signal_messages() -> None:
    assert Skip("why", result=1).message == "why"
    assert Skip("why", result=1).result == 1
    assert Fail("bad").message == "bad"
    assert str(Retry("later")) == "later"
    assert Skip().message == ""
