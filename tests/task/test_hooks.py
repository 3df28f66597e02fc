"""Hooks `(task, run, state)`, state handlers `(task, old, new)`, and errors inside them."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from reflow import Task, task
from reflow.states import Completed, Failed, State
from reflow.task import TaskRun
from reflow.testing import VirtualClock
from tests.task._support import FAIL_THEN_SUCCEED, Flavor, Recorder, Script, names

# --- order -----------------------------------------------------------------------------------


@pytest.mark.parametrize("async_hooks", [False, True], ids=["sync-hooks", "async-hooks"])
def test_hook_order_fail_then_succeed_by_keyword(
    flavor: Flavor, reflow_clock: VirtualClock, async_hooks: bool
) -> None:
    recorder = Recorder(is_async=async_hooks)
    t = task(retries=1, **recorder.hooks())(flavor.function(Script(ValueError, "ok")))

    assert flavor.call(t) == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED
    assert all(passed is t for passed in recorder.tasks)


@pytest.mark.parametrize("async_hooks", [False, True], ids=["sync-hooks", "async-hooks"])
def test_hook_order_fail_then_succeed_by_decorator_methods(
    flavor: Flavor, reflow_clock: VirtualClock, async_hooks: bool
) -> None:
    recorder = Recorder(is_async=async_hooks)
    t = task(retries=1)(flavor.function(Script(ValueError, "ok")))
    for kind in Recorder.KINDS:
        hook = recorder.hook(kind)
        assert getattr(t, kind)(hook) is hook

    assert flavor.call(t) == "ok"
    assert recorder.events == FAIL_THEN_SUCCEED


def test_hooks_when_every_attempt_fails(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    recorder = Recorder(is_async=flavor.is_async)
    t = task(retries=2, **recorder.hooks())(flavor.function(Script(ValueError)))

    with pytest.raises(ValueError, match="failure"):
        flavor.call(t)
    assert recorder.events == [
        ("on_running", "Running", 1),
        ("on_retry", "AwaitingRetry", 1),
        ("on_running", "Retrying", 2),
        ("on_retry", "AwaitingRetry", 2),
        ("on_running", "Retrying", 3),
        ("on_failure", "Failed", 3),
    ]


def test_on_failure_gets_the_failed_state_with_its_exception(flavor: Flavor) -> None:
    got: list[State[Any]] = []
    script = Script(KeyError)
    t = task(flavor.function(script))

    @t.on_failure
    def failed(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        got.append(state)
        assert run.state is state

    with pytest.raises(KeyError):
        flavor.call(t)
    assert [s.exception for s in got] == script.raised


def test_hooks_given_as_lists_run_in_order_then_decorated_ones(flavor: Flavor) -> None:
    order: list[str] = []
    t = task(
        on_completion=[
            lambda t, r, s: order.append("first"),
            lambda t, r, s: order.append("second"),
        ]
    )(flavor.function(Script(1)))

    @t.on_completion
    def third(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        order.append("third")

    flavor.call(t)
    assert order == ["first", "second", "third"]


def test_async_hooks_on_a_sync_task_are_awaited() -> None:
    done: list[str] = []

    async def hook(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        await asyncio.sleep(0)
        done.append(state.name)

    t = task(on_running=hook, on_completion=hook)(Script(1).step)

    assert t() == 1
    assert done == ["Running", "Completed"]


async def test_async_hooks_on_a_sync_task_called_inside_a_running_loop() -> None:
    done: list[str] = []

    async def hook(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        await asyncio.sleep(0)
        done.append(state.name)

    t = task(on_completion=hook)(Script(1).step)

    assert t() == 1
    assert done == ["Completed"]


def test_hooks_see_the_run_as_it_goes(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    seen: list[tuple[str, int, list[str]]] = []

    def hook(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        seen.append((state.name, len(run.attempts), names(run.states)))

    t = task(retries=1, on_running=hook, on_retry=hook, on_completion=hook)(
        flavor.function(Script(ValueError, "ok"))
    )
    flavor.call(t)

    assert seen == [
        ("Running", 1, ["Pending", "Running"]),
        ("AwaitingRetry", 1, ["Pending", "Running", "AwaitingRetry"]),
        ("Retrying", 2, ["Pending", "Running", "AwaitingRetry", "Retrying"]),
        ("Completed", 2, ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]),
    ]


# --- errors in hooks -------------------------------------------------------------------------


@pytest.mark.parametrize("async_hooks", [False, True], ids=["sync-hooks", "async-hooks"])
def test_hook_errors_are_logged_kept_and_change_nothing(
    flavor: Flavor,
    reflow_clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
    async_hooks: bool,
) -> None:
    errors: list[Exception] = []

    def broken(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        error = RuntimeError(f"hook bug on {state.name}")
        errors.append(error)
        raise error

    async def broken_async(t: Task[..., Any], run: TaskRun, state: State[Any]) -> None:
        broken(t, run, state)

    hook = broken_async if async_hooks else broken
    recorder = Recorder()
    script = Script(ValueError, "ok")
    t = task(
        retries=1,
        on_running=[hook, recorder.hook("on_running")],
        on_retry=hook,
        on_completion=[hook, recorder.hook("on_completion")],
    )(flavor.function(script))

    with caplog.at_level(logging.ERROR, logger="reflow.task"):
        assert flavor.call(t) == "ok"

    assert script.calls == 2
    run = recorder.run
    assert run.hook_errors == errors
    assert len(errors) == 4  # Running, AwaitingRetry, Retrying, Completed
    assert run.state.name == "Completed"
    assert ("on_completion", "Completed", 2) in recorder.events  # later hooks still ran
    logged = [r for r in caplog.records if r.name == "reflow.task"]
    assert len(logged) == 4
    assert all(r.levelno == logging.ERROR and r.exc_info for r in logged)
    assert "hook bug on Running" in caplog.text


def test_a_failing_on_failure_hook_does_not_hide_the_error(
    flavor: Flavor, caplog: pytest.LogCaptureFixture
) -> None:
    script = Script(KeyError)

    def broken(t: Any, run: TaskRun, state: State[Any]) -> None:
        raise RuntimeError("hook bug")

    t = task(on_failure=broken)(flavor.function(script))

    with caplog.at_level(logging.ERROR, logger="reflow.task"), pytest.raises(KeyError) as info:
        flavor.call(t)
    assert info.value is script.raised[0]
    assert "hook bug" in caplog.text


def test_a_failing_hook_on_a_cache_hit_changes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    from reflow.task import INPUTS, MemoryCacheStore

    runs: list[TaskRun] = []

    def hook(t: Any, run: TaskRun, state: State[Any]) -> None:
        runs.append(run)
        if state.name == "Cached":
            raise RuntimeError("hook bug")

    t = task(cache_policy=INPUTS, cache_store=MemoryCacheStore(), on_completion=hook)(
        lambda x: x * 2
    )
    with caplog.at_level(logging.ERROR, logger="reflow.task"):
        assert t(2) == 4
        assert t(2) == 4
    assert runs[-1].state.name == "Cached"
    assert len(runs[-1].hook_errors) == 1


# --- state handlers --------------------------------------------------------------------------


def test_state_handlers_see_every_transition(flavor: Flavor, reflow_clock: VirtualClock) -> None:
    seen: list[tuple[str | None, str]] = []

    def handler(t: Any, old: State[Any] | None, new: State[Any]) -> None:
        seen.append((old.name if old else None, new.name))

    t = task(retries=1, state_handlers=[handler])(flavor.function(Script(ValueError, "ok")))
    flavor.call(t)

    assert seen == [
        (None, "Pending"),
        ("Pending", "Running"),
        ("Running", "AwaitingRetry"),
        ("AwaitingRetry", "Retrying"),
        ("Retrying", "Completed"),
    ]


def test_a_state_handler_may_turn_failed_into_completed(flavor: Flavor) -> None:
    recorder = Recorder()

    def forgive(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        if new.is_failed():
            return Completed("fallback", message=f"forgave {new.exception!r}")
        return None

    t = task(state_handlers=forgive, **recorder.hooks())(flavor.function(Script(ValueError)))

    assert flavor.call(t) == "fallback"
    assert recorder.run.state.name == "Completed"
    assert recorder.run.state.message.startswith("forgave ValueError")
    assert recorder.events[-1] == ("on_completion", "Completed", 0)


def test_a_state_handler_may_turn_completed_into_failed(flavor: Flavor) -> None:
    recorder = Recorder()
    rejected = ValueError("result rejected")

    def reject(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        return Failed(rejected, message="rejected") if new.name == "Completed" else None

    t = task(state_handlers=reject, **recorder.hooks())(flavor.function(Script("bad")))

    with pytest.raises(ValueError, match="result rejected") as info:
        flavor.call(t)
    assert info.value is rejected
    assert recorder.run.state.name == "Failed"
    assert recorder.events[-1] == ("on_failure", "Failed", 0)


def test_a_replacement_failed_state_without_exception_still_raises(flavor: Flavor) -> None:
    def reject(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        return Failed(message="no good") if new.name == "Completed" else None

    t = task(state_handlers=reject)(flavor.function(Script("bad")))

    with pytest.raises(Exception, match="no good"):
        flavor.call(t)
    assert flavor.state(t).name == "Failed"


def test_state_handlers_chain_each_seeing_the_previous_replacement() -> None:
    seen: list[str] = []

    def first(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        return Completed("first") if new.name == "Completed" else None

    def second(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        if new.name == "Completed":
            seen.append(new.data)
        return None

    t = task(state_handlers=[first, second])(Script("original").step)

    assert t() == "first"
    assert seen == ["first"]


def test_a_failing_state_handler_is_logged_and_ignored(
    flavor: Flavor, caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()

    def broken(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        if new.name == "Completed":
            raise RuntimeError("handler bug")
        return None

    def wrong(t: Any, old: State[Any] | None, new: State[Any]) -> Any:
        return "not a state" if new.name == "Running" else None

    t = task(state_handlers=[broken, wrong], **recorder.hooks())(flavor.function(Script(5)))

    with caplog.at_level(logging.ERROR, logger="reflow.task"):
        assert flavor.call(t) == 5
    errors = recorder.run.hook_errors
    assert [type(e) for e in errors] == [TypeError, RuntimeError]
    assert "must return a State" in str(errors[0])
    assert "handler bug" in caplog.text
    assert names(recorder.run.states) == ["Pending", "Running", "Completed"]


def test_an_async_state_handler_is_refused_at_decoration() -> None:
    async def handler(t: Any, old: State[Any] | None, new: State[Any]) -> None:
        return None

    with pytest.raises(TypeError, match="state_handlers"):
        task(state_handlers=handler)
    with pytest.raises(TypeError, match="state_handlers"):
        task(state_handlers=[lambda t, o, n: None, handler])(Script(1).step)


def test_a_cache_hit_turned_into_a_failure_fires_on_failure(flavor: Flavor) -> None:
    from reflow.task import INPUTS, MemoryCacheStore

    recorder = Recorder(is_async=flavor.is_async)
    refused = ValueError("stale")

    def refuse_hits(t: Any, old: State[Any] | None, new: State[Any]) -> State[Any] | None:
        return Failed(refused) if new.is_cached() else None

    t = task(
        cache_policy=INPUTS,
        cache_store=MemoryCacheStore(),
        state_handlers=refuse_hits,
        **recorder.hooks(),
    )(flavor.wrap(lambda x: x))

    assert flavor.call(t, 1) == 1
    with pytest.raises(ValueError, match="stale"):
        flavor.call(t, 1)
    assert recorder.events[-1] == ("on_failure", "Failed", 0)
    assert ("on_completion", "Failed", 0) not in recorder.events
