"""The engine's reverts: what is reverted (and what not) when a flow fails, a revert that
raises, the store a run returns, and the executors atoms run on."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from typing import Any

import pytest

from reflow.atoms import (
    Failure,
    FunctorTask,
    GraphFlow,
    LinearFlow,
    Task,
    Times,
    UnorderedFlow,
    WrappedFailure,
    run,
)
from reflow.executors import InlineExecutor, ProcessExecutor, ThreadExecutor

Log = list[str]


def step(
    log: Log,
    name: str,
    fails: Callable[[int], bool] = lambda call: False,
    revert_fails: bool = False,
    **options: Any,
) -> FunctorTask:
    """Logs "x:name" per execute and "r:name" per revert; execute raises ValueError when
    `fails(call number)`, revert raises OSError when `revert_fails`."""
    calls = itertools.count(1)

    def execute(**kwargs: Any) -> str:
        call = next(calls)
        log.append(f"x:{name}")
        if fails(call):
            raise ValueError(f"{name} failed")
        return f"{name}-{call}"

    def revert(**kwargs: Any) -> None:
        log.append(f"r:{name}")
        if revert_fails:
            raise OSError(f"cannot undo {name}")

    return FunctorTask(execute, name=name, revert=revert, **options)


def always(call: int) -> bool:
    return True


def first(n: int) -> Callable[[int], bool]:
    return lambda call: call <= n


# --- what is reverted ---------------------------------------------------------------------------


def test_only_atoms_that_ran_are_reverted_and_the_failed_one_gets_its_failure() -> None:
    results: dict[str, Any] = {}

    def undo(name: str) -> Callable[..., None]:
        def revert(result: Any) -> None:
            results[name] = result

        return revert

    def fail() -> None:
        raise ValueError("broken")

    flow = LinearFlow("f").add(
        FunctorTask(lambda: "made", name="ok", revert=undo("ok")),
        FunctorTask(fail, name="bad", revert=undo("bad")),
        FunctorTask(lambda: "never", name="later", revert=undo("later")),
    )

    with pytest.raises(ValueError, match="broken"):
        run(flow)

    assert set(results) == {"ok", "bad"}
    assert results["ok"] == "made"
    assert isinstance(results["bad"], Failure)
    assert results["bad"].exception_str == "broken"
    assert isinstance(results["bad"].exception, ValueError)


def test_revert_gets_the_arguments_execute_got() -> None:
    got: list[dict[str, Any]] = []

    class Reserve(Task):
        def execute(self, room: str, nights: int = 1) -> str:
            return f"{room}x{nights}"

        def revert(
            self, room: str, result: Any, flow_failures: dict[str, Failure], **kw: Any
        ) -> None:
            got.append({"room": room, "result": result, **kw})

    flow = LinearFlow("f").add(Reserve(name="reserve"), FunctorTask(lambda: 1 / 0, name="div"))

    with pytest.raises(ZeroDivisionError):
        run(flow, store={"room": "101", "nights": 3})

    assert got == [{"room": "101", "result": "101x3", "nights": 3}]


def test_a_running_sibling_of_a_failed_atom_finishes_is_reverted_and_nothing_new_starts() -> None:
    log: Log = []
    failed = threading.Event()

    def fail() -> None:
        log.append("x:fail")
        failed.set()
        raise ValueError("fail")

    def slow() -> str:
        assert failed.wait(30), "the failing sibling never ran"
        log.append("x:slow")
        return "slow"

    def revert(name: str) -> Callable[[], None]:
        return lambda: log.append(f"r:{name}")

    flow = LinearFlow("f").add(
        UnorderedFlow("u").add(
            FunctorTask(fail, name="fail", revert=revert("fail")),
            FunctorTask(slow, name="slow", revert=revert("slow")),
        ),
        step(log, "after"),
    )

    with pytest.raises(ValueError, match="fail"):
        run(flow, executor=ThreadExecutor(2))

    assert sorted(log) == ["r:fail", "r:slow", "x:fail", "x:slow"]
    assert log.index("x:slow") < log.index("r:slow")


# --- a revert that raises -----------------------------------------------------------------------


def test_a_revert_that_raises_fails_the_flow_with_both_errors_and_stops_its_branch() -> None:
    log: Log = []
    flow = LinearFlow("f").add(
        step(log, "t1"),
        step(log, "t2", revert_fails=True),
        step(log, "t3", fails=always),
        step(log, "t4"),
    )

    with pytest.raises(WrappedFailure) as raised:
        run(flow)

    assert log == ["x:t1", "x:t2", "x:t3", "r:t3", "r:t2"]  # t1 (upstream of t2) not reverted
    errors = raised.value.exceptions
    assert [type(e) for e in errors] == [ValueError, OSError]
    assert str(errors[0]) == "t3 failed"
    assert str(errors[1]) == "cannot undo t2"
    assert any("t2" in note for note in errors[1].__notes__)


def test_a_revert_that_raises_stops_only_its_own_branch() -> None:
    log: Log = []
    flow = GraphFlow("g").add(
        step(log, "a1", provides="a1"),
        step(log, "a2", revert_fails=True, requires=["a1"], provides="a2"),
        step(log, "b1", provides="b1"),
        step(log, "b2", requires=["b1"], provides="b2"),
        step(log, "join", fails=always, requires=["a2", "b2"]),
    )

    with pytest.raises(WrappedFailure) as raised:
        run(flow, executor=InlineExecutor())

    reverted = [entry for entry in log if entry.startswith("r:")]
    assert sorted(reverted) == ["r:a2", "r:b1", "r:b2", "r:join"]  # a1 is behind a2: spared
    assert reverted[0] == "r:join"
    assert reverted.index("r:b2") < reverted.index("r:b1")
    assert {type(e) for e in raised.value.exceptions} == {ValueError, OSError}


def test_a_revert_that_raises_during_a_retry_fails_the_flow_instead_of_retrying() -> None:
    log: Log = []
    scope = LinearFlow("scope", retry=Times(3, name="r")).add(
        step(log, "a"), step(log, "b", revert_fails=True), step(log, "c", fails=first(1))
    )
    flow = LinearFlow("f").add(step(log, "t0"), scope, step(log, "t4"))

    with pytest.raises(WrappedFailure) as raised:
        run(flow)

    assert log == ["x:t0", "x:a", "x:b", "x:c", "r:c", "r:b"]
    assert [type(e) for e in raised.value.exceptions] == [ValueError, OSError]


# --- the store a run returns --------------------------------------------------------------------


def test_the_store_holds_the_initial_values_and_every_provided_one() -> None:
    initial = {"seed": 1}
    flow = LinearFlow("f", retry=Times(1, name="r", provides="attempt")).add(
        FunctorTask(lambda seed: seed + 1, name="inc", provides="two"),
        FunctorTask(lambda two: (two, two * 2), name="pair", provides=["p", "q"]),
    )

    store = run(flow, store=initial)

    assert store == {"seed": 1, "attempt": 1, "two": 2, "p": 2, "q": 4}
    assert initial == {"seed": 1}  # the caller's dict is left alone


def test_values_provided_by_reverted_atoms_are_removed_from_the_store() -> None:
    seen: list[Any] = []

    def probe(made: str = "absent") -> None:
        seen.append(made)

    calls = itertools.count(1)

    def make() -> str:
        return f"made-{next(calls)}"

    scope = LinearFlow("scope", retry=Times(2, name="r", provides="attempt")).add(
        FunctorTask(probe, name="probe"),
        FunctorTask(make, name="make", provides="made"),
        step([], "flaky", fails=first(1)),
    )

    store = run(scope)

    assert seen == ["absent", "absent"]  # the second try does not see the reverted value
    assert store == {"attempt": 2, "made": "made-2"}


# --- executors ----------------------------------------------------------------------------------


class ReportPid(Task):
    def execute(self, x: int) -> tuple[int, int]:
        self.update_progress(0.5)  # in a worker: no engine to tell, and no error
        return os.getpid(), 2 * x


class AddOne(Task):
    def execute(self, doubled: int) -> int:
        return doubled + 1


def test_a_process_executor_runs_module_level_atoms_in_worker_processes() -> None:
    flow = LinearFlow("p").add(
        ReportPid(name="where", provides=["pid", "doubled"]), AddOne(name="add", provides="out")
    )

    store = run(flow, store={"x": 3}, executor=ProcessExecutor(1))

    assert store["out"] == 7
    assert store["pid"] != os.getpid()


def test_a_thread_executor_runs_the_same_flow_to_the_same_store() -> None:
    def flow() -> LinearFlow:
        return LinearFlow("p").add(
            FunctorTask(lambda x: (0, 2 * x), name="where", provides=["pid", "doubled"]),
            AddOne(name="add", provides="out"),
        )

    assert run(flow(), store={"x": 3}, executor=ThreadExecutor(2)) == run(flow(), store={"x": 3})
