"""`@task` bare and with options, the Task it makes, `with_options`, `return_state`, `revert`."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import pytest

import reflow
from reflow import Task, task
from reflow.states import State
from reflow.task import Fail
from reflow.testing import VirtualClock
from tests.task._support import Flavor, Script


def test_bare_decorator_makes_a_task_that_runs_once() -> None:
    script = Script(ValueError)

    @task
    def add(a: int, b: int = 1) -> int:
        """Adds."""
        script.step()
        return a + b

    assert isinstance(add, Task)
    assert add.retries == 0
    with pytest.raises(ValueError, match="failure 1"):
        add(1)
    assert script.calls == 1


def test_task_keeps_the_functions_identity_and_signature() -> None:
    def add(a: int, b: int = 1) -> int:
        """Adds two numbers."""
        return a + b

    t = task(add)

    assert t.fn is add
    assert t.__wrapped__ is add
    assert t.__name__ == "add"
    assert t.__qualname__ == add.__qualname__
    assert t.__doc__ == "Adds two numbers."
    assert t.__module__ == __name__
    assert t.name == "add"
    assert inspect.signature(t) == inspect.signature(add)
    assert t(2) == 3
    assert t(2, b=5) == 7
    assert "add" in repr(t)


def test_decorator_with_options() -> None:
    @task(name="adder", description="adds", version="2", tags=["math", "fast"], retries=2)
    def add(a: int) -> int:
        return a + 1

    assert isinstance(add, Task)
    assert add.name == "adder"
    assert add.__name__ == "add"
    assert add.description == "adds"
    assert add.version == "2"
    assert add.tags == frozenset({"math", "fast"})
    assert add.retries == 2
    assert add(1) == 2


def test_function_can_be_passed_with_options() -> None:
    t = task(lambda x: x * 2, name="double", retries=1)

    assert t.name == "double"
    assert t.retries == 1
    assert t(4) == 8


def test_calling_task_with_wrong_arguments_raises_type_error(reflow_clock: VirtualClock) -> None:
    calls = 0

    @task(retries=3)
    def one(a: int) -> int:
        nonlocal calls
        calls += 1
        return a

    with pytest.raises(TypeError, match="positional argument"):
        one(1, 2, 3)  # type: ignore[call-arg]
    assert calls == 0


def test_task_is_exported_from_the_package() -> None:
    assert reflow.task is task
    assert reflow.Task is Task


# --- outside any flow ------------------------------------------------------------------------


def test_task_outside_a_flow_returns_its_value(flavor: Flavor) -> None:
    t = task(flavor.function(Script({"rows": 3})))

    assert flavor.call(t) == {"rows": 3}


def test_task_outside_a_flow_raises_the_original_exception_object(flavor: Flavor) -> None:
    script = Script(KeyError)
    t = task(retries=1)(flavor.function(script))

    with pytest.raises(KeyError) as info:
        flavor.call(t)
    assert info.value is script.raised[-1]
    assert script.calls == 2


def test_return_state_gives_the_final_state(flavor: Flavor) -> None:
    t = task(flavor.function(Script(42)))

    state = flavor.state(t)

    assert isinstance(state, State)
    assert state.name == "Completed"
    assert state.result() == 42


def test_return_state_on_failure_returns_the_failed_state_without_raising(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError)
    t = task(retries=2)(flavor.function(script))

    state = flavor.state(t)

    assert state.name == "Failed"
    assert state.is_failed()
    assert state.exception is script.raised[-1]
    assert script.calls == 3
    with pytest.raises(ValueError, match="failure") as info:
        state.result()
    assert info.value is script.raised[-1]


def test_return_state_false_returns_the_value(flavor: Flavor) -> None:
    t = task(flavor.function(Script("v")))

    assert flavor.call(t, return_state=False) == "v"


def test_a_function_taking_return_state_gets_the_argument() -> None:
    @task
    def echo(*, return_state: bool = False) -> bool:
        return return_state

    assert echo(return_state=True) is True
    assert echo() is False


def test_async_task_call_is_a_coroutine() -> None:
    @task
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n * 2

    coroutine = fetch(2)
    assert inspect.iscoroutine(coroutine)
    assert asyncio.run(coroutine) == 4
    assert fetch.is_async


async def test_async_task_awaited_in_a_running_loop() -> None:
    @task(retries=1)
    async def fetch(n: int) -> int:
        await asyncio.sleep(0)
        return n + 1

    assert await fetch(1) == 2
    assert await asyncio.gather(fetch(1), fetch(2)) == [2, 3]


async def test_sync_task_called_from_async_code() -> None:
    @task
    def add(a: int) -> int:
        return a + 1

    assert add(1) == 2


def test_a_task_can_be_called_many_times_and_each_call_is_its_own_run(flavor: Flavor) -> None:
    runs: list[Any] = []
    t = task(on_completion=lambda t, run, s: runs.append(run))(flavor.function(Script(1)))

    flavor.call(t)
    flavor.call(t)

    assert len(runs) == 2
    assert runs[0] is not runs[1]
    assert runs[0].id != runs[1].id


# --- with_options ----------------------------------------------------------------------------


def test_with_options_makes_a_new_task_and_leaves_the_original(
    flavor: Flavor, reflow_clock: VirtualClock
) -> None:
    script = Script(ValueError, ValueError, "ok")
    original = task(name="fetch", tags=["io"])(flavor.function(script))

    more = original.with_options(retries=2)

    assert more is not original
    assert isinstance(more, Task)
    assert more.fn is original.fn
    assert more.retries == 2
    assert more.name == "fetch"
    assert more.tags == frozenset({"io"})
    assert original.retries == 0
    assert flavor.call(more) == "ok"
    assert script.calls == 3
    other = more.with_options(retries=0, name="other")
    assert (other.retries, other.name, more.retries, more.name) == (0, "other", 2, "fetch")


def test_with_options_keeps_hooks_registered_by_decorator_and_the_revert() -> None:
    seen: list[str] = []
    t = task(Script(Fail("no")).step)

    @t.on_failure
    def failed(t: Task[..., Any], run: Any, state: State[Any]) -> None:
        seen.append(state.name)

    @t.revert
    def undo(result: Any) -> None:
        pass

    copy = t.with_options(name="copy")
    with pytest.raises(Fail):
        copy()

    assert seen == ["Failed"]
    assert copy.revert_fn is undo
    assert copy.name == "copy"


def test_with_options_replaces_hooks_given_again() -> None:
    seen: list[str] = []
    t = task(on_completion=lambda t, r, s: seen.append("old"))(Script(1).step)

    t.with_options(on_completion=lambda t, r, s: seen.append("new"))()

    assert seen == ["new"]


def test_with_options_rejects_unknown_options() -> None:
    t = task(Script(1).step)

    with pytest.raises(TypeError, match="retrys"):
        t.with_options(retrys=3)


def test_with_options_checks_the_new_values() -> None:
    t = task(Script(1).step)

    with pytest.raises(ValueError, match="retries"):
        t.with_options(retries=-1)


def test_with_options_of_an_async_task_stays_async() -> None:
    @task
    async def fetch() -> int:
        return 1

    copy = fetch.with_options(retries=1)

    assert copy.is_async
    assert asyncio.run(copy()) == 1  # type: ignore[arg-type]


# --- revert ----------------------------------------------------------------------------------


def test_revert_keyword_is_stored_and_not_run_by_the_task() -> None:
    undone: list[Any] = []

    def undo(result: Any, *args: Any) -> None:
        undone.append(result)

    t = task(revert=undo)(Script(ValueError).step)

    assert t.revert_fn is undo
    with pytest.raises(ValueError, match="failure"):
        t()
    assert undone == []


def test_revert_decorator_method_stores_the_function(flavor: Flavor) -> None:
    undone: list[Any] = []
    t = task(flavor.function(Script("made")))

    @t.revert
    def undo(result: Any) -> None:
        undone.append(result)

    assert t.revert_fn is undo
    assert undo.__name__ == "undo"  # the decorator returns the function itself
    assert flavor.call(t) == "made"
    assert undone == []


def test_revert_must_be_callable() -> None:
    with pytest.raises(TypeError, match="revert"):
        task(revert=5)  # type: ignore[arg-type]
    t = task(Script(1).step)
    with pytest.raises(TypeError, match="revert"):
        t.revert(5)  # type: ignore[type-var]
