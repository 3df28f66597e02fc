"""A task without hooks, cache or timeout runs its first attempt inline; the record is the same."""

from __future__ import annotations

from typing import Any

import pytest

from reflow import task
from reflow.states import State
from reflow.task import Fail, Skip, Task, TaskRun
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Script


def history(flavor: Flavor, fn: Any, full_path: bool, **options: Any) -> tuple[object, ...]:
    """Run a task of `fn` and return what its run recorded, comparable across paths."""
    runs: list[TaskRun] = []

    def capture(t: Task[..., Any], old: State[Any] | None, new: State[Any]) -> None:
        if old is None:  # a state handler sees every run from its first state
            runs.append(_current_run(t))

    if full_path:
        options["on_running"] = lambda t, run, state: None  # any hook takes the full path
    t = task(state_handlers=[capture], **options)(flavor.wrap(fn))
    assert t._fast is not full_path
    state = flavor.state(t)
    (run,) = runs
    return (
        state.name,
        [s.name for s in run.states],
        [(a.number, a.state.name if a.state else None) for a in run.attempts],
        state.data if state.is_completed() else type(state.exception).__name__,
    )


def _current_run(t: Task[..., Any]) -> TaskRun:
    """The TaskRun being handled: state handlers get the task, not the run, so look up the stack."""
    import inspect

    frame = inspect.currentframe()
    while frame is not None:
        run = frame.f_locals.get("run")
        if isinstance(run, TaskRun):
            return run
        frame = frame.f_back
    raise AssertionError("no run in the calling frames")


SCRIPTS = {
    "success": (lambda: Script("ok"), {}),
    "fail then succeed": (lambda: Script(ConnectionError, "ok"), {"retries": 2}),
    "exhausted": (lambda: Script(ConnectionError), {"retries": 2}),
    "not retried": (lambda: Script(KeyError, "ok"), {"retries": 2, "retry_on": ConnectionError}),
    "skip": (lambda: Script(Skip("posted", result=0)), {"retries": 2}),
    "fail signal": (lambda: Script(Fail("bad")), {"retries": 2}),
}


@pytest.mark.parametrize("case", SCRIPTS)
def test_the_fast_path_records_what_the_full_path_records(
    case: str, flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    make_script, options = SCRIPTS[case]
    fast = history(flavor, make_script().step, full_path=False, **options)
    full = history(flavor, make_script().step, full_path=True, **options)

    assert fast == full


def test_registering_a_hook_later_leaves_the_fast_path() -> None:
    @task
    def add(x: int, y: int) -> int:
        return x + y

    assert add._fast  # type: ignore[attr-defined]
    seen: list[str] = []
    add.on_completion(lambda t, run, state: seen.append(state.name))

    assert add(1, 2) == 3
    assert seen == ["Completed"]


def test_a_keyboard_interrupt_on_the_fast_path_cancels_the_run() -> None:
    runs: list[TaskRun] = []

    def capture(t: Task[..., Any], old: State[Any] | None, new: State[Any]) -> None:
        if new.name == "Cancelled":
            runs.append(_current_run(t))

    @task(retries=3, state_handlers=[capture])
    def stop() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        stop()
    (run,) = runs
    assert [s.name for s in run.states] == ["Pending", "Running", "Cancelled"]
    assert len(run.attempts) == 1
