"""Retry controllers and their decisions: RETRY reverts the scope (newest first) and runs it
again, REVERT reverts the scope and lets the enclosing controller decide, REVERT_ALL reverts
everything; Times, ForEach, ParameterizedForEach, AlwaysRevert(All), custom controllers, and
`defer_reverts`."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest

from reflow.atoms import (
    AlwaysRevert,
    AlwaysRevertAll,
    Decision,
    FlowError,
    ForEach,
    FunctorTask,
    History,
    LinearFlow,
    ParameterizedForEach,
    Retry,
    Times,
    UnorderedFlow,
    WrappedFailure,
    run,
)
from reflow.executors import InlineExecutor, ThreadExecutor

Log = list[str]


def step(
    log: Log,
    name: str,
    fails: Callable[[int, dict[str, Any]], bool] = lambda call, kwargs: False,
    requires: tuple[str, ...] = (),
    provides: str | None = None,
    error: type[Exception] = RuntimeError,
    priority: int | None = None,
) -> FunctorTask:
    """Logs "x:name" (with its arguments' values) per execute, "r:name" per revert; raises
    `error` when `fails(call number, arguments)`."""
    calls = itertools.count(1)

    def execute(**kwargs: Any) -> str:
        call = next(calls)
        shown = ",".join(str(v) for v in kwargs.values())
        log.append(f"x:{name}({shown})" if kwargs else f"x:{name}")
        if fails(call, kwargs):
            raise error(f"{name} failed on call {call}")
        return f"{name}-{call}"

    def revert(**kwargs: Any) -> None:
        log.append(f"r:{name}")

    return FunctorTask(
        execute, name=name, requires=list(requires), provides=provides, revert=revert,
        priority=priority,
    )  # fmt: skip


def first(n: int) -> Callable[[int, dict[str, Any]], bool]:
    """Fails the first `n` calls."""
    return lambda call, kwargs: call <= n


def always(call: int, kwargs: dict[str, Any]) -> bool:
    return True


class Watched:
    """Mixin for controllers: logs "x:name", "name:DECISION" and "r:name"."""

    log: Log

    def execute(self, history: History, *args: Any, **kwargs: Any) -> Any:
        self.log.append(f"x:{self.name}")  # type: ignore[attr-defined]
        return super().execute(history, *args, **kwargs)  # type: ignore[misc]

    def on_failure(self, history: History, *args: Any, **kwargs: Any) -> Decision:
        decision: Decision = super().on_failure(history, *args, **kwargs)  # type: ignore[misc]
        self.log.append(f"{self.name}:{decision.name}")  # type: ignore[attr-defined]
        return decision

    def revert(self, history: History, *args: Any, **kwargs: Any) -> Any:
        self.log.append(f"r:{self.name}")  # type: ignore[attr-defined]
        return super().revert(history, *args, **kwargs)  # type: ignore[misc]


class WTimes(Watched, Times):
    pass


class WForEach(Watched, ForEach):
    pass


class WAlwaysRevert(Watched, AlwaysRevert):
    pass


class WAlwaysRevertAll(Watched, AlwaysRevertAll):
    pass


def watched(controller: Any, log: Log) -> Any:
    controller.log = log
    return controller


# --- RETRY --------------------------------------------------------------------------------------


def test_times_provides_the_try_number_and_retries_until_a_try_succeeds() -> None:
    log: Log = []
    flow = LinearFlow("f", retry=Times(3, name="r", provides="attempt")).add(
        step(log, "t", fails=lambda call, kw: kw["attempt"] < 3, requires=("attempt",))
    )

    store = run(flow)

    assert log == ["x:t(1)", "r:t", "x:t(2)", "r:t", "x:t(3)"]
    assert store == {"attempt": 3}


def test_retry_reverts_only_the_scope_newest_first_and_runs_it_again() -> None:
    log: Log = []
    scope = LinearFlow("scope", retry=watched(WTimes(2, name="r"), log)).add(
        step(log, "s1"), step(log, "s2"), step(log, "s3", fails=first(1))
    )
    flow = LinearFlow("f").add(step(log, "before"), scope, step(log, "after"))

    run(flow)

    assert log == [
        "x:before",
        "x:r",
        "x:s1",
        "x:s2",
        "x:s3",
        "r:RETRY",
        "r:s3",
        "r:s2",
        "r:s1",
        "x:r",
        "x:s1",
        "x:s2",
        "x:s3",
        "x:after",
    ]


def test_retry_of_an_unordered_scope_reverts_and_reruns_every_atom_of_it() -> None:
    log: Log = []
    scope = UnorderedFlow("u", retry=Times(2, name="r")).add(
        step(log, "a"), step(log, "b", fails=first(1)), step(log, "c")
    )

    run(scope, executor=InlineExecutor())

    assert log == ["x:a", "x:b", "x:c", "r:c", "r:b", "r:a", "x:a", "x:b", "x:c"]


def test_an_atom_after_a_retried_scope_runs_once_after_the_scope_succeeds() -> None:
    log: Log = []
    scope = LinearFlow("scope", retry=Times(3, name="r")).add(
        UnorderedFlow("branches").add(
            step(log, "u1"),
            LinearFlow("chain").add(step(log, "v1"), step(log, "v2", fails=first(2))),
        )
    )
    flow = LinearFlow("f").add(scope, step(log, "after"))

    run(flow, executor=InlineExecutor())

    assert log.count("x:after") == 1
    assert log[-1] == "x:after"
    assert log.count("x:v2") == 3


def test_foreach_provides_each_value_in_turn() -> None:
    log: Log = []
    flow = LinearFlow("f", retry=ForEach(["x", "y", "z"], name="r", provides="v")).add(
        step(log, "t", fails=lambda call, kw: kw["v"] != "z", requires=("v",))
    )

    assert run(flow) == {"v": "z"}
    assert log == ["x:t(x)", "r:t", "x:t(y)", "r:t", "x:t(z)"]


def test_parameterized_foreach_takes_its_values_from_the_store() -> None:
    log: Log = []
    retry = ParameterizedForEach(name="r", rebind=["choices"], provides="v")
    flow = LinearFlow("f", retry=retry).add(
        step(log, "t", fails=lambda call, kw: kw["v"] < 3, requires=("v",))
    )

    assert run(flow, store={"choices": (1, 2, 3, 4)}) == {"choices": (1, 2, 3, 4), "v": 3}
    assert log == ["x:t(1)", "r:t", "x:t(2)", "r:t", "x:t(3)"]


def test_parameterized_foreach_needs_its_values_in_the_store() -> None:
    flow = LinearFlow("f", retry=ParameterizedForEach(name="r", rebind=["choices"], provides="v"))
    flow.add(step([], "t", requires=("v",)))

    with pytest.raises(FlowError, match="r requires 'choices'"):
        run(flow)


def test_controllers_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="attempts"):
        Times(0)
    with pytest.raises(ValueError, match="at least one"):
        ForEach([])
    with pytest.raises(TypeError, match="retry"):
        LinearFlow("f", retry="Times(3)")  # type: ignore[arg-type]


def test_a_nested_controller_starts_afresh_when_the_enclosing_scope_is_retried() -> None:
    log: Log = []

    def fails(call: int, kwargs: dict[str, Any]) -> bool:
        return call <= 2  # every value of the first outer try fails, the first of the next works

    inner = LinearFlow("inner", retry=ForEach(["a", "b"], name="ri", provides="v"))
    inner.add(step(log, "t", fails=fails, requires=("v",)))
    outer = LinearFlow("outer", retry=Times(2, name="ro", provides="n")).add(inner)

    store = run(outer)

    assert [entry for entry in log if entry.startswith("x:")] == ["x:t(a)", "x:t(b)", "x:t(a)"]
    assert store["v"] == "a"
    assert store["n"] == 2


# --- REVERT -------------------------------------------------------------------------------------


def test_revert_reverts_the_scope_and_the_enclosing_controller_decides_to_retry() -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=watched(WAlwaysRevert(name="ri"), log)).add(
        step(log, "i1"), step(log, "i2", fails=first(1))
    )
    outer = LinearFlow("outer", retry=watched(WTimes(2, name="ro"), log)).add(
        step(log, "o1"), inner, step(log, "o2")
    )

    run(outer)

    assert log == [
        "x:ro",
        "x:o1",
        "x:ri",
        "x:i1",
        "x:i2",
        "ri:REVERT",
        "r:i2",
        "r:i1",
        "r:ri",
        "ro:RETRY",
        "r:o1",
        "x:ro",
        "x:o1",
        "x:ri",
        "x:i1",
        "x:i2",
        "x:o2",
    ]


def test_revert_up_to_a_controller_that_reverts_too_fails_the_flow() -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=watched(WAlwaysRevert(name="ri"), log)).add(
        step(log, "i1", fails=always)
    )
    outer = LinearFlow("outer", retry=watched(WTimes(1, name="ro"), log)).add(
        step(log, "o1"), inner
    )
    flow = LinearFlow("top").add(step(log, "t0"), outer, step(log, "t9"))

    with pytest.raises(RuntimeError, match="i1 failed on call 1"):
        run(flow)

    assert log == [
        "x:t0",
        "x:ro",
        "x:o1",
        "x:ri",
        "x:i1",
        "ri:REVERT",
        "r:i1",
        "r:ri",
        "ro:REVERT",
        "r:o1",
        "r:ro",
        # no controller above "outer" and defer_reverts=False: t0 stays done
    ]


def test_the_enclosing_controller_sees_the_failure_in_its_history() -> None:
    seen: list[tuple[int, bool]] = []

    class Outer(Retry):
        def on_failure(self, history: History) -> Decision:
            seen.append((len(history), history.caused_by(KeyError)))
            return Decision.RETRY if len(history) < 2 else Decision.REVERT

    inner = LinearFlow("inner", retry=AlwaysRevert(name="ri")).add(
        FunctorTask(lambda: {}["missing"], name="lookup")
    )
    flow = LinearFlow("outer", retry=Outer(name="ro")).add(inner)

    with pytest.raises(KeyError):
        run(flow)

    assert seen == [(1, True), (2, True)]


@pytest.mark.parametrize(
    ("defer_reverts", "reverted"),
    [(False, ["r:t3", "r:t2", "r:ctl"]), (True, ["r:t3", "r:t2", "r:ctl", "r:t1"])],
)
def test_defer_reverts_decides_whether_a_revert_without_a_parent_controller_reverts_all(
    defer_reverts: bool, reverted: Log
) -> None:
    log: Log = []
    sub = LinearFlow("sub", retry=watched(WAlwaysRevert(name="ctl"), log)).add(
        step(log, "t2"), step(log, "t3", fails=always)
    )
    flow = LinearFlow("f").add(step(log, "t1"), sub, step(log, "t4"))

    with pytest.raises(RuntimeError, match="t3 failed"):
        run(flow, defer_reverts=defer_reverts)

    assert log[:5] == ["x:t1", "x:ctl", "x:t2", "x:t3", "ctl:REVERT"]
    assert log[5:] == reverted
    assert "x:t4" not in log


def test_defer_reverts_still_lets_a_parent_controller_decide() -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=AlwaysRevert(name="ri")).add(step(log, "i", fails=first(1)))
    outer = LinearFlow("outer", retry=Times(2, name="ro")).add(step(log, "o"), inner)

    run(outer, defer_reverts=True)

    assert log == ["x:o", "x:i", "r:i", "r:o", "x:o", "x:i"]


def test_exhausted_times_reverts_its_scope_and_the_parent_decides() -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=Times(2, name="ri")).add(step(log, "i", fails=first(2)))
    outer = LinearFlow("outer", retry=watched(WTimes(2, name="ro"), log)).add(inner)

    run(outer)

    assert log == ["x:ro", "x:i", "r:i", "x:i", "r:i", "ro:RETRY", "x:ro", "x:i"]


# --- REVERT_ALL ---------------------------------------------------------------------------------


def test_revert_all_reverts_everything_without_asking_the_enclosing_controller() -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=watched(WAlwaysRevertAll(name="ri"), log)).add(
        step(log, "i1"), step(log, "i2", fails=always)
    )
    outer = LinearFlow("outer", retry=watched(WTimes(3, name="ro"), log)).add(
        step(log, "o1"), inner
    )
    flow = LinearFlow("top").add(step(log, "t0"), outer, step(log, "t9"))

    with pytest.raises(RuntimeError, match="i2 failed on call 1"):
        run(flow)

    assert log == [
        "x:t0",
        "x:ro",
        "x:o1",
        "x:ri",
        "x:i1",
        "x:i2",
        "ri:REVERT_ALL",
        "r:i2",
        "r:i1",
        "r:ri",
        "r:o1",
        "r:ro",
        "r:t0",
    ]


@pytest.mark.parametrize(
    "controller",
    [
        pytest.param(lambda: Times(1, name="ri", revert_all=True), id="times"),
        pytest.param(lambda: ForEach([1], name="ri", revert_all=True), id="foreach"),
    ],
)
def test_revert_all_option_of_exhausted_controllers_reverts_everything(
    controller: Callable[[], Retry],
) -> None:
    log: Log = []
    inner = LinearFlow("inner", retry=controller()).add(step(log, "i", fails=always))
    outer = LinearFlow("outer", retry=watched(WTimes(5, name="ro"), log)).add(inner)
    flow = LinearFlow("top").add(step(log, "t0"), outer)

    with pytest.raises(RuntimeError, match="i failed"):
        run(flow)

    assert log == ["x:t0", "x:ro", "x:i", "r:i", "r:ro", "r:t0"]  # "ro" never decided


def test_a_failure_with_no_controller_reverts_everything_that_ran() -> None:
    log: Log = []
    flow = LinearFlow("f").add(
        step(log, "a"),
        UnorderedFlow("u").add(step(log, "b"), step(log, "c", fails=always)),
        step(log, "never"),
    )

    with pytest.raises(RuntimeError, match="c failed"):
        run(flow, executor=InlineExecutor())

    assert log == ["x:a", "x:b", "x:c", "r:c", "r:b", "r:a"]


# --- custom controllers -------------------------------------------------------------------------


class RetryConnectionErrors(Retry):
    """Retries a scope up to `limit` (from the store) times on connection errors only."""

    default_provides = "try_number"

    def execute(self, history: History, limit: int) -> int:
        return len(history) + 1

    def on_failure(self, history: History, limit: int) -> Decision:
        if not history.caused_by(ConnectionError, index=-1):
            return Decision.REVERT_ALL
        return Decision.RETRY if len(history) < limit else Decision.REVERT


def test_a_custom_controller_retries_by_its_own_rule_with_requirements_from_the_store() -> None:
    log: Log = []
    flow = LinearFlow("f", retry=RetryConnectionErrors(name="ctl")).add(
        step(log, "t", fails=first(2), error=ConnectionError, requires=("try_number",))
    )

    store = run(flow, store={"limit": 3})

    assert store == {"limit": 3, "try_number": 3}
    assert log == ["x:t(1)", "r:t", "x:t(2)", "r:t", "x:t(3)"]


def test_a_custom_controller_reverts_everything_on_other_errors() -> None:
    log: Log = []
    sub = LinearFlow("sub", retry=RetryConnectionErrors(name="ctl")).add(
        step(log, "t", fails=always, error=ValueError)
    )
    flow = LinearFlow("f").add(step(log, "before"), sub)

    with pytest.raises(ValueError, match="t failed on call 1"):
        run(flow, store={"limit": 3})

    assert log == ["x:before", "x:t", "r:t", "r:before"]


def test_a_custom_controller_requirement_missing_from_the_store_is_a_flow_error() -> None:
    flow = LinearFlow("f", retry=RetryConnectionErrors(name="ctl")).add(step([], "t"))

    with pytest.raises(FlowError, match="ctl requires 'limit'"):
        run(flow)


def test_the_base_retry_defines_no_on_failure() -> None:
    flow = LinearFlow("f", retry=Retry(name="bare")).add(step([], "t", fails=always))

    with pytest.raises(WrappedFailure) as raised:
        run(flow)

    kinds = {type(e) for e in raised.value.exceptions}
    assert kinds == {RuntimeError, NotImplementedError}


def test_on_failure_returning_something_else_than_a_decision_is_an_error() -> None:
    log: Log = []

    class Sloppy(Retry):
        def on_failure(self, history: History) -> Any:
            return "RETRY"

    sub = LinearFlow("sub", retry=Sloppy(name="sloppy")).add(step(log, "t", fails=always))
    flow = LinearFlow("f").add(step(log, "before"), sub)

    with pytest.raises(WrappedFailure) as raised:
        run(flow)

    errors = raised.value.exceptions
    assert [type(e) for e in errors] == [RuntimeError, TypeError]
    assert "sloppy" in str(errors[1])
    assert "Decision" in str(errors[1])
    assert log == ["x:before", "x:t", "r:t", "r:before"]  # not retried; everything reverted


def test_on_failure_that_raises_fails_the_flow_with_both_errors() -> None:
    class Broken(Retry):
        def on_failure(self, history: History) -> Decision:
            raise LookupError("controller broke")

    flow = LinearFlow("f", retry=Broken(name="broken")).add(step([], "t", fails=always))

    with pytest.raises(WrappedFailure) as raised:
        run(flow)

    errors = raised.value.exceptions
    assert [type(e) for e in errors] == [RuntimeError, LookupError]
    assert any("broken" in note for note in errors[1].__notes__)


# --- several failures at once -------------------------------------------------------------------


def test_two_failures_in_one_scope_at_once_retry_the_scope_once() -> None:
    log: Log = []
    scope = UnorderedFlow("u", retry=Times(2, name="r")).add(
        step(log, "a", fails=first(1)), step(log, "b", fails=first(1)), step(log, "c")
    )

    run(scope, executor=InlineExecutor())

    assert log == [
        "x:a", "x:b", "x:c", "r:c", "r:b", "r:a", "x:a", "x:b", "x:c",
    ]  # fmt: skip


def test_a_controller_decides_seeing_every_failure_of_its_scope_at_once() -> None:
    log: Log = []
    seen: list[list[str]] = []

    class Picky(Retry):
        def on_failure(self, history: History) -> Decision:
            seen.append(sorted(name for name, _ in history.outcomes_iter(-1)))
            if history.caused_by(ValueError, index=-1):
                return Decision.REVERT_ALL  # a ValueError is not worth another try
            return Decision.RETRY

    scope = UnorderedFlow("u", retry=Picky(name="picky")).add(
        step(log, "a", fails=first(1), error=ConnectionError),
        step(log, "b", fails=first(1), error=ValueError),
    )

    with pytest.raises(WrappedFailure) as raised:
        run(scope, executor=InlineExecutor())

    assert seen == [["a", "b"]]
    assert {type(e) for e in raised.value.exceptions} == {ConnectionError, ValueError}
    assert log == ["x:a", "x:b", "r:b", "r:a"]


def test_failures_in_two_sibling_scopes_at_once_are_each_retried_by_their_controller() -> None:
    log: Log = []
    left = LinearFlow("left", retry=Times(2, name="rl")).add(step(log, "l", fails=first(1)))
    right = LinearFlow("right", retry=Times(2, name="rr")).add(step(log, "r", fails=first(1)))
    flow = LinearFlow("f").add(UnorderedFlow("both").add(left, right), step(log, "end"))

    run(flow, executor=InlineExecutor())

    assert log.count("x:l") == 2
    assert log.count("x:r") == 2
    assert log.count("r:l") == 1
    assert log.count("r:r") == 1
    assert log[-1] == "x:end"


def test_a_retried_unordered_scope_on_threads_reverts_and_reruns_every_atom() -> None:
    lock = threading.Lock()

    class Locked(list[str]):
        def append(self, item: str) -> None:
            with lock:
                super().append(item)

    log = Locked()
    scope = UnorderedFlow("u", retry=Times(2, name="r")).add(
        step(log, "a", fails=first(1)), step(log, "b"), step(log, "c")
    )

    run(scope, executor=ThreadExecutor(3))

    assert sorted(log) == sorted(["x:a", "x:b", "x:c"] * 2 + ["r:a", "r:b", "r:c"])
    first_try, second_try = log[:6], log[6:]
    assert sorted(first_try) == ["r:a", "r:b", "r:c", "x:a", "x:b", "x:c"]
    assert sorted(second_try) == ["x:a", "x:b", "x:c"]
