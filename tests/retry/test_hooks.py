"""Hooks: order, registration, failures inside hooks, StopRetrying, async hooks from sync code."""

from __future__ import annotations

import logging

import pytest

from reflow import StopRetrying, attempting, retry
from reflow.retry import AttemptState, Phase
from reflow.retry.hooks import HOOK_NAMES
from reflow.testing import VirtualClock
from tests.retry._support import FAIL_THEN_SUCCEED_EVENTS, Flavor, Recorder, Script


def test_hook_order_with_decorator_methods(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    fetch = retry(attempts=3, wait=1)(flavor.function(Script(ValueError, "ok")))
    for kind in HOOK_NAMES:
        getattr(fetch, kind)(recorder)

    assert flavor.call(fetch) == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


def test_hook_order_with_keyword_lists(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    hooks = {kind: [recorder] for kind in HOOK_NAMES}
    fetch = retry(attempts=3, wait=1, **hooks)(flavor.function(Script(ValueError, "ok")))

    assert flavor.call(fetch) == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


def test_hook_keyword_accepts_a_single_function(reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    fetch = retry(attempts=3, wait=1, on_failure=recorder)(Script(ValueError, "ok").step)

    assert fetch() == "ok"
    assert recorder.events == [("on_failure", 1, 0.0)]


def test_decorator_method_returns_the_hook_unchanged() -> None:
    fetch = retry(attempts=2)(Script("ok").step)

    def hook(state: AttemptState) -> None:
        pass

    assert fetch.on_giveup(hook) is hook


def test_hooks_of_one_kind_run_in_registration_order(reflow_clock: VirtualClock) -> None:
    order: list[str] = []
    fetch = retry(attempts=2, on_success=[lambda s: order.append("keyword")])(Script("ok").step)

    @fetch.on_success
    def second(state: AttemptState) -> None:
        order.append("decorator")

    fetch()
    assert order == ["keyword", "decorator"]


def test_hook_states_carry_phase_and_outcome(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    script = Script(ValueError, "ok")
    hooks = {kind: recorder for kind in HOOK_NAMES}
    fetch = retry(attempts=3, wait=1, **hooks)(flavor.function(script))

    flavor.call(fetch)
    by_phase = {state.phase: state for state in recorder.states}  # the last of each phase
    assert by_phase[Phase.FAILURE].exception is script.raised[0]
    assert by_phase[Phase.FAILURE].failed
    assert by_phase[Phase.SUCCESS].result == "ok"
    assert by_phase[Phase.SUCCESS].exception is None
    assert by_phase[Phase.BEFORE_ATTEMPT].elapsed == 1.0  # attempt 2 starts after the 1 s wait
    assert by_phase[Phase.SUCCESS].name.endswith("attempt_async" if flavor.is_async else "attempt")


def test_on_giveup_fires_once_on_exhaustion(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    script = Script(ValueError)
    fetch = retry(attempts=3, wait=1, on_giveup=[recorder])(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert recorder.events == [("on_giveup", 3, 0.0)]
    assert recorder.states[0].exception is script.raised[-1]


def test_on_giveup_does_not_fire_on_success(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder()
    fetch = retry(attempts=3, wait=1, on_giveup=recorder)(flavor.function(Script(ValueError, 1)))

    flavor.call(fetch)
    assert recorder.events == []


def test_on_failure_fires_for_every_failed_attempt_the_last_included(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    fetch = retry(attempts=3, wait=0, on_failure=recorder)(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert [attempt for _, attempt, _ in recorder.events] == [1, 2, 3]


# --- hooks that raise -------------------------------------------------------------------------


def _raising_hook(state: AttemptState) -> None:
    raise RuntimeError(f"hook broke in {state.phase.value}")


@pytest.mark.parametrize("kind", HOOK_NAMES)
def test_raising_hook_does_not_change_a_success(
    flavor: Flavor, reflow_clock: VirtualClock, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(ValueError, "ok")
    fetch = retry(attempts=3, wait=1, **{kind: _raising_hook})(flavor.function(script))

    assert flavor.call(fetch) == "ok"
    assert script.calls == 2
    assert reflow_clock.waits == [1]


@pytest.mark.parametrize("kind", HOOK_NAMES)
def test_raising_hook_does_not_change_a_failure(
    flavor: Flavor, reflow_clock: VirtualClock, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=3, wait=1, **{kind: _raising_hook})(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value is script.raised[-1]
    assert script.calls == 3


def test_raising_hook_is_logged_with_its_traceback(
    flavor: Flavor, reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fetch = retry(attempts=3, wait=1, on_failure=_raising_hook)(
        flavor.function(Script(ValueError, "ok"))
    )

    with caplog.at_level(logging.ERROR, logger="reflow.retry"):
        flavor.call(fetch)
    records = [r for r in caplog.records if r.name == "reflow.retry"]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RuntimeError)
    assert "hook broke in on_failure" in caplog.text
    assert "Traceback" in caplog.text
    assert "_raising_hook" in record.getMessage()


# --- StopRetrying -----------------------------------------------------------------------------


def _stop(state: AttemptState) -> None:
    raise StopRetrying


def test_stop_retrying_from_on_failure_ends_retrying_at_once(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, "ok")
    fetch = retry(attempts=5, wait=1, on_failure=_stop)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value is script.raised[0]
    assert script.calls == 1
    assert reflow_clock.waits == []
    assert "StopRetrying" in info.value.__notes__[0]


def test_stop_retrying_from_before_wait_ends_retrying_at_once(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    script = Script(ValueError, "ok")
    fetch = retry(attempts=5, wait=2, before_wait=[recorder, _stop], after_wait=recorder)(
        flavor.function(script)
    )

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert info.value is script.raised[0]
    assert script.calls == 1
    assert reflow_clock.waits == []
    assert recorder.events == [("before_wait", 1, 2.0)]


def test_stop_retrying_from_before_attempt_makes_that_attempt_the_last(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    def stop_at_second(state: AttemptState) -> None:
        if state.attempt == 2:
            raise StopRetrying

    script = Script(ValueError)
    fetch = retry(attempts=5, wait=1, before_attempt=stop_at_second)(flavor.function(script))

    with pytest.raises(ValueError, match="failure") as info:
        flavor.call(fetch)
    assert script.calls == 2
    assert info.value is script.raised[1]


def test_last_attempt_requested_by_before_attempt_may_still_succeed(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, "ok")
    fetch = retry(attempts=5, wait=1, before_attempt=_stop)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 1

    script = Script("ok")
    fetch = retry(attempts=5, wait=1, before_attempt=_stop)(flavor.function(script))
    assert flavor.call(fetch) == "ok"


def test_stop_retrying_from_after_wait_makes_the_next_attempt_the_last(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    fetch = retry(attempts=5, wait=1, after_wait=_stop)(flavor.function(script))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(fetch)
    assert script.calls == 2
    assert reflow_clock.waits == [1]


# --- async hooks ------------------------------------------------------------------------------


def _async_recorder() -> tuple[Recorder, object]:
    recorder = Recorder()

    async def hook(state: AttemptState) -> None:
        recorder(state)

    return recorder, hook


def test_async_hooks_run_from_sync_code_without_an_event_loop(reflow_clock: VirtualClock) -> None:
    recorder, hook = _async_recorder()
    fetch = retry(attempts=3, wait=1, **{kind: hook for kind in HOOK_NAMES})(
        Script(ValueError, "ok").step
    )

    assert fetch() == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


async def test_async_hooks_run_from_sync_code_inside_a_running_event_loop(
    reflow_clock: VirtualClock,
) -> None:
    recorder, hook = _async_recorder()
    fetch = retry(attempts=3, wait=1, **{kind: hook for kind in HOOK_NAMES})(
        Script(ValueError, "ok").step
    )

    assert fetch() == "ok"  # a sync Retriable called from async code
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


async def test_async_hooks_are_awaited_by_an_async_retriable(reflow_clock: VirtualClock) -> None:
    recorder, hook = _async_recorder()
    script = Script(ValueError, "ok")
    fetch = retry(attempts=3, wait=1, **{kind: hook for kind in HOOK_NAMES})(
        Flavor(is_async=True).function(script)
    )

    assert await fetch() == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED_EVENTS


async def _async_stop(state: AttemptState) -> None:
    raise StopRetrying


@pytest.mark.parametrize("running_loop", [False, True], ids=["no-loop", "in-loop"])
def test_async_hook_raising_stop_retrying_ends_a_sync_call(
    reflow_clock: VirtualClock, running_loop: bool
) -> None:
    import asyncio

    script = Script(ValueError, "ok")
    fetch = retry(attempts=5, wait=1, on_failure=_async_stop)(script.step)

    async def from_loop() -> object:
        return fetch()

    with pytest.raises(ValueError, match="failure"):
        asyncio.run(from_loop()) if running_loop else fetch()
    assert script.calls == 1


async def _async_raising(state: AttemptState) -> None:
    raise RuntimeError("async hook broke")


def test_raising_async_hook_in_sync_code_is_logged(
    reflow_clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    fetch = retry(attempts=3, wait=1, on_failure=_async_raising)(Script(ValueError, "ok").step)

    with caplog.at_level(logging.ERROR, logger="reflow.retry"):
        assert fetch() == "ok"
    assert [type(r.exc_info[1]) for r in caplog.records if r.exc_info] == [RuntimeError]


def test_after_wait_sees_the_time_elapsed_after_the_wait(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    recorder = Recorder()
    fetch = retry(attempts=3, wait=1, before_wait=recorder, after_wait=recorder)(
        flavor.function(Script(ValueError, "ok"))
    )

    flavor.call(fetch)
    before, after = recorder.states
    assert (before.phase, after.phase) == (Phase.BEFORE_WAIT, Phase.AFTER_WAIT)
    assert after.elapsed >= before.elapsed + 1
    assert after.wait_seconds == before.wait_seconds == 1


def test_after_wait_in_a_block_sees_the_time_elapsed_after_the_wait(
    reflow_clock: VirtualClock,
) -> None:
    recorder = Recorder()
    for attempt in attempting(attempts=3, wait=2, before_wait=recorder, after_wait=recorder):
        with attempt:
            if attempt.number == 1:
                raise ConnectionError("reset")
    before, after = recorder.states
    assert after.elapsed >= before.elapsed + 2


@pytest.mark.parametrize("kind", HOOK_NAMES)
def test_a_string_is_not_a_hook(kind: str) -> None:
    with pytest.raises(TypeError, match=f"{kind} takes functions .*got 'print'"):
        retry(**{kind: "print"})
    with pytest.raises(TypeError, match=f"{kind} takes functions .*got 'print'"):
        attempting(**{kind: "print"})  # type: ignore[misc]
    fetch = retry(attempts=2)(len)
    with pytest.raises(TypeError, match=f"{kind} takes functions .*got 'print'"):
        getattr(fetch, kind)("print")


def test_a_stop_retrying_message_is_the_reason_in_the_note() -> None:
    @retry(attempts=5, wait=0)
    def fetch() -> None:
        raise ConnectionError("down")

    @fetch.on_failure
    def give_up(state: AttemptState) -> None:
        raise StopRetrying("the circuit is open")

    with pytest.raises(ConnectionError) as caught:
        fetch()
    assert caught.value.__notes__[-1].endswith("(the circuit is open)")
